"""`make model`: from a Hugging Face BERT checkpoint to the SavedModel TF Serving loads.

``cpu`` exports in this environment; ``inf1`` and ``inf2`` compile with Neuron inside a pinned
container (``modelbuild/compiler``) whose packages come from the release table the server image
uses. The exported signature is ``components.model_server.runtime.model_signature``.
"""
