"""Tests create their tables from template.yaml through moto's server."""


def test_given_the_template_when_tables_are_created_then_the_table_exists_with_its_indexes(
    dynamodb_client, table_names
):
    table = dynamodb_client.describe_table(TableName=table_names["PortfolioTable"])["Table"]

    assert [index["IndexName"] for index in table["GlobalSecondaryIndexes"]] == ["UsersByShard"]
    assert [index["IndexName"] for index in table["LocalSecondaryIndexes"]] == ["TransactionsByTime"]
    assert [index["Projection"]["ProjectionType"] for index in table["GlobalSecondaryIndexes"]] == ["KEYS_ONLY"]
