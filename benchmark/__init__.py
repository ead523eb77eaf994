"""mimbench benchmark: suites of attacks on MIM reconstructions and downstream classifiers, and their reports."""
