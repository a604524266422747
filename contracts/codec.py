"""The one JSON encoder for every contract struct (msgspec encoders are stateless and
thread-safe, so one instance serves every module)."""

import msgspec

json_encoder = msgspec.json.Encoder()
