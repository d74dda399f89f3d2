"""Names shared across a boundary, each written once.

The CDK app, the container scripts and the load client meet on these: environment variables a
task definition sets and a container reads, metric names the exporter writes and alarms read,
stack outputs the stack declares and the client looks up, container names. Scripts that run inside
an image cannot import this package; ``tests/test_contracts.py`` keeps their copies equal.
"""
