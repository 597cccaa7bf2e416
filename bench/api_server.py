"""The HTTP API alone, without relay or consumers, for the benchmark's HTTP stage.

python -m bench.api_server PORT      (settings from ESCALATIONS_* variables)
"""

from __future__ import annotations

import sys

import uvicorn

from infra.bootstrap import build_service, read_model_engine
from infra.http.app import create_app
from infra.settings import Settings


def main() -> None:
    settings = Settings()
    app = create_app(build_service(settings), read_model_engine(settings), settings.api_tokens)
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")


if __name__ == "__main__":
    main()
