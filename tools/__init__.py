"""Development tools that ship with the repository but not with the load client: a TF Serving
stand-in for the client's tests and ``make bench-local``, and that benchmark."""
