"""``cnnkit bench`` and the benchmark scripts' shared parts: the reference trainers
cnnkit is compared with (plain loops, the textbook DataLoader loop, the pytorch/examples
recipe) and the timing harness that runs them side by side."""
