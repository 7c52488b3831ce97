"""Import every handler from the sam build output the way the Lambda runtime does.

Run with the runtime's Python (3.12): the layer lands on /opt/python, the function code on
/var/task, boto3 comes from the runtime. Any missing module or wrong-platform wheel fails here.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

HANDLERS = {
    "ParseFeedFunction": "parse_feed.lambda_handler",
    "EnrichUploadFunction": "enrich_upload.lambda_handler",
}


def main(build_dir: str) -> int:
    build = Path(build_dir)
    build = build.resolve()
    layer = build / "SharedLayer" / "python"
    runtime = build.parent / "lambda-runtime"
    os.environ.update(
        STATE_BUCKET="feedsync-state-example",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ACCESS_KEY_ID="none",
        AWS_SECRET_ACCESS_KEY="none",
        POWERTOOLS_SERVICE_NAME="feedsync",
        POWERTOOLS_METRICS_NAMESPACE="feedsync",
        STATE_TABLE="feedsync-state-table-example",
        DATA_SOURCE_ID="101",
        MARKETO_BASE_URL="https://123-ABC-456.mktorest.com",
        MARKETO_SECRET_ARN="arn:aws:secretsmanager:us-east-1:123456789012:secret:marketo",
    )
    for name, handler in HANDLERS.items():
        module_name, func = handler.rsplit(".", 1)
        sys.path[:] = [str(build / name), str(layer), str(runtime), *sys.path[1:]]
        module = importlib.import_module(module_name)
        assert callable(getattr(module, func)), f"{name}: {handler} is not callable"
        feedsync = sys.modules["feedsync"]
        assert Path(feedsync.__file__).is_relative_to(layer), (
            f"feedsync not from layer: {feedsync.__file__}"
        )
        from feedsync.datafeed import gzipstream

        assert gzipstream.DECOMPRESSOR == "isal.igzip", "isal did not load from the layer"
        from feedsync.datafeed import nativescan

        if os.uname().machine == os.environ.get("LAMBDA_WHEEL_ARCH", "x86_64"):
            assert nativescan.SCANNER == "native", "the native scanner did not load from the layer"
            # cryptography is native: sign a JWT with the layer's wheels, as the JWT flow does
            import jwt
            from cryptography.hazmat.primitives import serialization
            from cryptography.hazmat.primitives.asymmetric import rsa

            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            pem = key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            assert jwt.encode({"a": 1}, pem, algorithm="RS256").count(".") == 2
            assert Path(sys.modules["cryptography"].__file__ or "").is_relative_to(layer)
        import requests

        assert Path(requests.__file__).is_relative_to(layer), "requests not from the layer"
        import feedsync.adobe.bdia
        import feedsync.adobe.cja
        import feedsync.adobe.datasources
        import feedsync.adobe.target

        print(f"ok {name}: {handler} (python {sys.version.split()[0]}, feedsync from {layer})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
