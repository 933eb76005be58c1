"""Tests create their tables from template.yaml through moto's server."""


def test_given_the_template_when_tables_are_created_then_both_exist_with_their_indexes(dynamodb_client, table_names):
    table = dynamodb_client.describe_table(TableName=table_names["PortfolioTable"])["Table"]

    assert [index["IndexName"] for index in table["GlobalSecondaryIndexes"]] == ["UsersByShard"]
    assert [index["IndexName"] for index in table["LocalSecondaryIndexes"]] == ["TransactionsByTime"]
    assert dynamodb_client.describe_table(TableName=table_names["IdempotencyTable"])["Table"]["KeySchema"] == [
        {"AttributeName": "id", "KeyType": "HASH"}
    ]
