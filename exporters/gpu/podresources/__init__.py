"""The kubelet's PodResources API as the GPU exporter uses it: the generated messages and stub
(`api_pb2`, `api_pb2_grpc`, from api.proto by `make generate`), the client that reads which devices
each container holds, and a kubelet simulator serving the same interface (demo, tests, bench)."""
