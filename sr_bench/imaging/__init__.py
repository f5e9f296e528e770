"""Pure tensor image operations: MATLAB-exact resize, colour conversion, quantisation, image I/O."""
