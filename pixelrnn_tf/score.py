# BAZEL-PLACEHOLDER: temporary file for Bazel testing; delete me.
