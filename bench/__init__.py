"""`make bench`: coordhub's benchmarks, each a ratio measured side by side in one run."""
