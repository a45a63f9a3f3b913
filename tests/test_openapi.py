"""The OpenAPI document: it matches the router, is valid OpenAPI 3.1, shares its request schemas
with the validators, and real answers fit the schemas it gives them."""
from __future__ import annotations

import io
import re

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from server import openapi, schemas
from server.app import create_app
from server.config import Config
from tests.factories import expect_error, png_bytes

ERROR = {"$ref": "#/components/responses/Error"}


def shape(path: str) -> str:
    """The path with its variables unnamed: /api/jobs/{id} and /api/jobs/{x} are one route."""
    return re.sub(r"\{[^}]*\}", "{}", path)


def router_operations(app) -> set[tuple[str, str]]:
    found = set()
    for resource in app.router.resources():
        methods = {route.method for route in resource}
        if "GET" in methods:
            methods.discard("HEAD")  # aiohttp answers HEAD for every GET by itself
        found |= {(shape(resource.canonical), method.lower()) for method in methods}
    return found


def schema_of(doc: dict, pointer: str) -> Draft202012Validator:
    """A validator for the document's schema at `pointer` (its $refs resolved in the doc)."""
    registry = Registry().with_resource("urn:hikaze-openapi",
                                        Resource.from_contents(doc, DRAFT202012))
    return Draft202012Validator({"$ref": f"urn:hikaze-openapi#{pointer}"}, registry=registry)


def response_pointer(doc: dict, path: str, method: str, status: str) -> str:
    response = doc["paths"][path][method]["responses"][status]
    if "$ref" in response:
        response = doc["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
    schema = response["content"]["application/json"]["schema"]
    return schema["$ref"][1:] if "$ref" in schema else (
        f"/paths/{path.replace('/', '~1')}/{method}/responses/{status}"
        "/content/application~1json/schema")


async def check_answer(doc: dict, response, path: str, method: str) -> dict:
    """Assert the answer's JSON fits the schema the document gives for its status."""
    body = await response.json()
    status = str(response.status)
    if status not in doc["paths"][path][method]["responses"]:
        status = status[0] + "XX"
    errors = sorted(schema_of(doc, response_pointer(doc, path, method, status)).iter_errors(body),
                    key=str)
    assert not errors, f"{method.upper()} {path} {response.status}: {errors[0]}"
    return body


@pytest.fixture(scope="module")
def doc() -> dict:
    return openapi.document()


# --- the document and the router agree ---------------------------------------------------------


def test_every_route_is_documented_and_every_documented_route_exists(tmp_path, doc):
    served = router_operations(create_app(Config(data_dir=tmp_path)))
    documented = {(shape(path), method) for path, method, _ in openapi.operations(doc)}
    assert served - documented == set(), "routes missing from server/openapi/*.yaml"
    assert documented - served == set(), "documented routes the router does not have"


def test_the_router_comparison_sees_a_missing_route(tmp_path, doc):
    app = create_app(Config(data_dir=tmp_path))
    async def handler(request):
        return None

    app.router.add_get("/api/not-documented", handler)
    documented = {(shape(path), method) for path, method, _ in openapi.operations(doc)}
    assert router_operations(app) - documented == {("/api/not-documented", "get")}


def test_the_document_is_valid_openapi_3_1(doc):
    assert doc["openapi"].startswith("3.1")
    validate(doc)


def test_no_yaml_slip_leaves_a_stray_key(doc):
    # An unquoted comma inside a {flow: mapping} makes a key of the rest of the sentence.
    def walk(node, where):
        if isinstance(node, dict):
            for key, value in node.items():
                assert value is not None and " " not in str(key), f"{where}/{key}"
                walk(value, f"{where}/{key}")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, f"{where}[{index}]")

    walk(doc, "")


def test_every_operation_has_a_unique_id_and_a_success_answer(doc):
    ids = [op["operationId"] for _, _, op in openapi.operations(doc)]
    assert len(ids) == len(set(ids))
    for path, method, operation in openapi.operations(doc):
        assert any(code.startswith(("1", "2")) for code in operation["responses"]), (path, method)


# --- shared components -------------------------------------------------------------------------


def test_request_schemas_are_the_validators_own(doc):
    text = str(doc)
    for constant in ("MODEL_PATCH", "TAGS_ADD", "TAG_PATCH", "IMAGE_ORDER", "IMAGE_COVER",
                     "GENERATION_PARAMS", "REFRESH_METADATA", "LEGACY_MIGRATION", "IMPORT_MODELS",
                     "META"):
        name = openapi.component_name(constant)
        assert doc["components"]["schemas"][name] == getattr(schemas, constant)
        assert f"'#/components/schemas/{name}'" in text, f"{name} is never referenced"


def test_each_validated_body_references_its_schema(doc):
    def body(path, method):
        return doc["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]

    assert body("/api/models/{sha256}", "patch") == {"$ref": "#/components/schemas/ModelPatch"}
    assert body("/api/tags_add", "post") == {"$ref": "#/components/schemas/TagsAdd"}
    assert body("/api/migration/import_models", "post") == {
        "$ref": "#/components/schemas/ImportModels"}


def test_the_document_is_a_copy_so_the_validators_stay_untouched():
    doc = openapi.document()
    doc["components"]["schemas"]["TagPatch"]["required"].append("changed")
    assert schemas.TAG_PATCH["required"] == ["name"]
    assert openapi.document()["components"]["schemas"]["TagPatch"]["required"] == ["name"]


def test_every_error_answer_is_the_envelope(doc):
    for path, method, operation in openapi.operations(doc):
        responses = operation["responses"]
        assert responses["4XX"] == ERROR and responses["5XX"] == ERROR, (path, method)
        for code, response in responses.items():
            if code[0] in "45":
                assert response == ERROR, (path, method, code)
    assert doc["components"]["schemas"]["Error"]["required"] == ["error", "code", "details"]


def test_bearer_auth_is_declared(doc):
    assert doc["components"]["securitySchemes"]["bearerAuth"] == {
        **doc["components"]["securitySchemes"]["bearerAuth"], "type": "http", "scheme": "bearer"}


# --- assembling fragments ----------------------------------------------------------------------


def fragment(path="/api/x", method="get", **components) -> dict:
    return {"paths": {path: {method: {"responses": {"200": {"description": "ok"}}}}},
            "components": components}


def test_api_v1_operations_need_the_key_unless_they_say_otherwise():
    doc = openapi.assemble([fragment("/api/v1/things"), fragment("/api/v1/auth/open"),
                            fragment("/api/plain")], {})
    doc["paths"]["/api/v1/auth/open"]["get"]["security"] = []  # what a public one would write
    keyed = doc["paths"]["/api/v1/things"]["get"]
    assert keyed["security"] == [{"bearerAuth": []}]
    assert keyed["responses"]["401"] == ERROR
    assert "security" not in doc["paths"]["/api/plain"]["get"]
    assert "401" not in doc["paths"]["/api/plain"]["get"]["responses"]

    public = {"paths": {"/api/v1/open": {"get": {"security": [], "responses": {}}}}}
    assert "401" not in openapi.assemble([public], {})["paths"]["/api/v1/open"]["get"]["responses"]


def test_a_route_or_a_component_defined_twice_is_refused():
    with pytest.raises(openapi.DocumentError, match="documented twice"):
        openapi.assemble([fragment(), fragment()], {})
    openapi.assemble([fragment(method="get"), fragment(method="post")], {})  # two methods: fine
    with pytest.raises(openapi.DocumentError, match="defined twice"):
        openapi.assemble([fragment(schemas={"A": {}}), fragment("/b", schemas={"A": {}})], {})
    with pytest.raises(openapi.DocumentError, match="defined twice"):
        openapi.assemble([fragment(schemas={"ModelPatch": {}})], {"ModelPatch": {}})


def test_a_yaml_mistake_names_its_file(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("paths: {a: b: c}\n")
    with pytest.raises(openapi.DocumentError, match="broken.yaml"):
        openapi.load(broken)


# --- the route, and real answers against the document ------------------------------------------


async def test_the_document_is_served(client, doc):
    response = await client.get("/api/openapi.json")
    assert response.status == 200
    assert response.content_type == "application/json"
    assert await response.json() == doc
    assert (await client.post("/api/openapi.json")).status == 405


async def test_real_answers_fit_their_schemas(client, sha, doc):
    upload = await client.post("/api/images/upload",
                               data={"sha256": sha, "image": io.BytesIO(png_bytes()), "nsfw_level": "2"})
    await check_answer(doc, upload, "/api/images/upload", "post")
    patched = await client.patch(f"/api/models/{sha}",
                                 json={"tags": ["style"], "meta_json": {"notes": "n"}})
    await check_answer(doc, patched, "/api/models/{sha256}", "patch")
    for path, url in [("/api/health", "/api/health"), ("/api/models", "/api/models"),
                      ("/api/models/{sha256}", f"/api/models/{sha}"), ("/api/tags", "/api/tags"),
                      ("/api/models/get_types", "/api/models/get_types"),
                      ("/api/migration/pending_models", "/api/migration/pending_models"),
                      ("/api/jobs", "/api/jobs")]:
        await check_answer(doc, await client.get(url), path, "get")


async def test_error_answers_fit_the_envelope_schema(client, doc):
    for path, url in [("/api/models/{sha256}", "/api/models/" + "0" * 64),
                      ("/api/models/{sha256}", "/api/models/not-a-hash"),
                      ("/api/jobs/{id}", "/api/jobs/nope")]:
        response = await client.get(url)
        await expect_error(response, 404 if "0" * 64 in url else 400)
        await check_answer(doc, response, path, "get")
