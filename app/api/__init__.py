"""The local control API: FastAPI on uvicorn on 127.0.0.1 with a bearer token, monitoring, and its client.

Public names:

* :class:`ApiServer` - ``ApiServer(station, host="127.0.0.1", port=8765, token_path=...)``, ``start()``/``stop()``;
  ``start_for_station(station, port_override)`` starts it as ``api.*`` in the station's settings say (or returns
  None); the window and headless stations are handed it as ``StationOptions(api=...)``
* :class:`ApiClient` - ``ApiClient.for_data_dir(data_dir)`` talks to a running station
* :func:`openapi_document` - the OpenAPI 3.1 document (also served at ``/api/v1/openapi.json``)
* :func:`add_cli` (``app.api.cli``) - the ``ctl`` command
"""

from app.api.client import ApiClient, ClientError, Response
from app.api.errors import ApiConfigError, ApiError, HttpError
from app.api.openapi import openapi_document
from app.api.server import ApiServer, ApiSettings, start_for_station
from app.api.token import TokenError, ensure_token, read_token

__all__ = [
    "ApiClient", "ApiConfigError", "ApiError", "ApiServer", "ApiSettings", "ClientError", "HttpError", "Response",
    "TokenError", "ensure_token", "openapi_document", "read_token", "start_for_station",
]
