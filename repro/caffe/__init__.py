"""Caffe files: the schema subset, reading (V0/V1/V2), writing (V2) and Caffe's shape inference."""
