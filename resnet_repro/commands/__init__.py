"""`python -m resnet_repro ...`: parse and check the command line, then call a layer below."""
