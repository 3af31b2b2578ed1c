"""The KV Connect wire protocol: protobuf messages (``datapath_pb2``, generated from
``datapath.proto``), their conversion to ``kvshim.model`` (``convert``) and the JSON metadata
exchange (``metadata``). Spec: kv-connect.md."""
