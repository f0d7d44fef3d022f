"""Training of the embedded model set: nets described once, as Caffe layers, and run in torch."""
