"""How clients reach the endpoint: TLS on the load balancer, and the text API's key and limits."""

from __future__ import annotations

import re
from dataclasses import dataclass

from config.parsing import boolean, fail, integer, text

# ACM certificate ARNs: arn:<partition>:acm:<region>:<account>:certificate/<uuid> (ACM API reference, "Certificate").
_CERTIFICATE_ARN = re.compile(r"arn:aws[a-z-]*:acm:[a-z]{2}(?:-[a-z]+)+-\d:\d{12}:certificate/[0-9a-f-]{36}")
# Secrets Manager: a secret's name (1-512 of letters, digits and /_+=.@-) or its ARN, whose name ends in
# "-" and six random characters (Secrets Manager API reference, CreateSecret "Name"; "Secret ARNs").
_SECRET_NAME = re.compile(r"[A-Za-z0-9/_+=.@-]{1,512}")
_SECRET_ARN = re.compile(
    r"arn:aws[a-z-]*:secretsmanager:[a-z]{2}(?:-[a-z]+)+-\d:\d{12}:secret:(?P<name>[A-Za-z0-9/_+=.@-]{1,512})-[A-Za-z0-9]{6}"
)
MAX_CLIENT_BATCH = 1024


@dataclass(frozen=True, kw_only=True)
class EndpointSettings:
    certificate_arn: str | None
    """TLS listeners terminate with this ACM certificate (the text API's always, the tensor ports' unless
    ``tls_tensor_ports`` is off); None: plain TCP listeners."""
    tls_tensor_ports: bool
    api_key_secret: str | None
    """A Secrets Manager secret (name or full ARN) whose value the text API requires as a bearer token."""
    max_client_batch_size: int

    @property
    def secret_is_arn(self) -> bool:
        return self.api_key_secret is not None and self.api_key_secret.startswith("arn:")


def parse_endpoint(
    certificate: object, tls_tensor_ports: object, secret: object, max_client_batch_size: object
) -> EndpointSettings:
    certificate_arn = text("certificateArn", certificate)
    if certificate_arn and not _CERTIFICATE_ARN.fullmatch(certificate_arn):
        raise fail(
            "certificateArn",
            certificate_arn,
            "expected an ACM certificate ARN (arn:aws:acm:<region>:<account>:certificate/<id>) in the stack's "
            "region, or empty for plain TCP listeners",
        )
    api_key_secret = text("apiKeySecret", secret)
    if api_key_secret and not (
        _SECRET_ARN.fullmatch(api_key_secret)
        or (not api_key_secret.startswith("arn:") and _SECRET_NAME.fullmatch(api_key_secret))
    ):
        raise fail(
            "apiKeySecret",
            api_key_secret,
            "expected a Secrets Manager secret's name (letters, digits and /_+=.@-) or its full ARN, ending in "
            "-XXXXXX, or empty for a text API without a key",
        )
    return EndpointSettings(
        certificate_arn=certificate_arn or None,
        tls_tensor_ports=boolean("tlsTensorPorts", tls_tensor_ports),
        api_key_secret=api_key_secret or None,
        max_client_batch_size=integer("maxClientBatchSize", max_client_batch_size, low=1, high=MAX_CLIENT_BATCH),
    )
