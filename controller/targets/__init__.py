"""Where replicas go: the ScaleTarget protocol, its in-memory fake and the Kubernetes /scale adapter."""
