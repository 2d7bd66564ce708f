"""The public conformance kit for recourse methods (grows with the method catalogue)."""
