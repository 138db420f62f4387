"""CIFAR-10: the data, the augmentation, and the trainer that makes a run folder."""
