"""crnn-bench: the harness that compares the models on accuracy, decoding speed and throughput."""
