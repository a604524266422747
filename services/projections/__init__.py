"""The projection service: contract events from the stream folded into a read model, queried.

Imports run one way, each layer using only those below it:
main, cli  ->  http  ->  audit | feed  ->  runtime  ->  store  ->  model (pure)
"""
