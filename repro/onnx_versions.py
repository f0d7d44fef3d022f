"""The ONNX opset and IR version of every graph repro writes (converted nets, gradient graphs, posteriors).

Opset 17 is what onnx2torch 1.5.15 and the converter and VJP rules are tested with: from opset 18 on,
onnx2torch has no converter for Pad-18 or the Reduce*-18 ops, and from 19 none for AveragePool-19. IR
version 8 is the one opset 17 needs, and capping the files there lets older runtimes load them (onnx 1.23
would otherwise write IR 14, which ONNX Runtime 1.30 rejects).
"""

OPSET = 17
IR_VERSION = 8
