"""The simulated Kubernetes cluster: test and demo infrastructure speaking the real REST API."""
