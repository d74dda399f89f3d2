"""The model servers' wire protocols, generated from their .proto files (make proto): TF Serving's
Predict and model status, and KServe v2's inference protocol (Triton's). The load client, the
stand-in and the text front all speak them; the text front's image copies this folder."""
