"""Requests generated from the OpenAPI document itself (schemathesis), against a real station.

For every documented operation, schema-valid (positive) and schema-invalid (negative) requests:

* no answer is a 5xx;
* every status is one the document declares for that operation, with a declared content type and
  a body matching its schema;
* a schema-valid request is not refused as malformed: a 400/413/415 never, a 422 only for a rule
  the schema cannot state (it spans fields or needs the database: the metric must apply to the
  target, ``camera_id`` only and always with a one-camera target and naming a camera, a schedule
  span's end after its start, a cameras file's own content);
* a schema-invalid request is refused with a 4xx.

The station is this module's own (its cameras may be deleted, its settings changed). Bounded: a
fixed number of examples, no example database, no shrinking beyond what hypothesis does.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app.api import ApiServer
from app.api.openapi import openapi_document
from app.platform.paths import resolve_paths
from app.station import Station, StationOptions

#: operations left out: an endless stream, and ones that wait on a subprocess for up to 60 s (a clip's
#: post-roll too; tests/api/test_api_evidence.py sends it valid and invalid bodies)
EXCLUDED = ("stream_events", "probe_camera", "restart_camera", "save_camera_clip")
#: fields of a 422 that a schema-valid request may still get (rules across fields or the database)
CROSS_FIELD = ("metric", "camera_id", "schedule", "yaml", "target", "webhook_url", "name", "rule_id")
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES = {GenerationMode.POSITIVE: 400, GenerationMode.NEGATIVE: 250}


@pytest.fixture(scope="module")
def fuzz_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    data_dir = tmp_path_factory.mktemp("fuzz-station")
    station = Station(StationOptions(paths=resolve_paths(data_dir), seed_demo=True, autostart=False,
                                     watch_interval=0.2)).open()
    station.parts().router.set_options({"auto_rollback": False}, actor="fuzz tests")
    api = ApiServer(station, port=0, discovery=False).start()
    try:
        yield api
    finally:
        api.stop()
        station.close()


def _schema():
    return schemathesis.openapi.from_dict(openapi_document()).exclude(operation_id=list(EXCLUDED))


def _refusal_fields(response: requests.Response) -> set[str]:
    try:
        errors = response.json()["error"]["details"].get("errors", [])
    except (ValueError, KeyError, TypeError, AttributeError):
        return set()
    return {str(e.get("field", "")) for e in errors}


@pytest.mark.slow
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=lambda m: m.value)
def test_requests_generated_from_the_document(fuzz_api, mode):
    schema = _schema()
    session = requests.Session()
    headers = {"Authorization": f"Bearer {fuzz_api.token}"}
    refused: list[str] = []

    @settings(max_examples=EXAMPLES[mode], deadline=None, database=None, derandomize=True,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    @given(case=schema.as_strategy(generation_mode=mode))
    def run(case) -> None:
        response = case.call(base_url=fuzz_api.url, session=session, headers=headers, timeout=30)
        case.validate_response(response, checks=CHECKS)
        where = f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:300]}"
        if mode is GenerationMode.POSITIVE:
            assert response.status_code not in (400, 413, 415), where
            if response.status_code == 422:
                fields = _refusal_fields(response)
                assert fields and all(f.split(".")[-1].split("[")[0] in CROSS_FIELD for f in fields), where
                refused.append(where)

    try:
        run()
    finally:
        session.close()
        # leave the rollout as it was for the next mode
        st = fuzz_api.station
        if st.parts().router.settings.latched:  # only an audited resume clears a rollback latch
            st.parts().router.resume(track="all", actor="fuzz cleanup", reason="fuzz cleanup")
        st.parts().router.set(use_domain=False, percent=0, actor="fuzz cleanup")
        st.stop_all()
