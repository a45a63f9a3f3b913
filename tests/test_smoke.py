async def test_health(make_client, make_tree):
    client = await make_client(make_tree())
    response = await client.get("/api/health")
    assert response.status == 200
    body = await response.json()
    assert body["counts"]["models"] == 5
