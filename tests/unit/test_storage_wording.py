"""Every storage error's advice, reworded for ``tibackup dump``, names flags and environment variables,
never a Backup's Secret or fields; in a Backup the advice stays in the Backup's words."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, NoCredentialsError, PartialCredentialsError

from tibackup.errors import StorageError
from tibackup.storage.options import S3Options
from tibackup.storage.s3_errors import Where, translate
from tibackup.storage.wording import for_command_line, reword_for_command_line

WHERE = Where(endpoint="http://127.0.0.1:9", bucket="bk", write_settings="s3.storageClass STANDARD_IA")
BACKUP_WORDS = ("Secret", "secretName", "access_key", "secret_key", " s3.")


def _client(code: str, status: int = 400) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}}, "PutObject"
    )


def _messages() -> list[str]:
    errors = [
        translate(NoCredentialsError(), WHERE, "writing"),
        translate(PartialCredentialsError(provider="env", cred_var="AWS_SECRET_ACCESS_KEY"), WHERE, "writing"),
        *(translate(_client(code), WHERE, "writing", "k") for code in (
            "SignatureDoesNotMatch", "InvalidAccessKeyId", "AccessDenied", "PermanentRedirect",
            "InvalidStorageClass", "AccessControlListNotSupported", "KMS.NotFound", "InvalidArgument")),
    ]  # fmt: skip
    for options in (
        S3Options(bucket="bk", access_key="a"),
        S3Options(bucket="a/b"),
        S3Options(bucket="bk", sse="x"),
    ):
        with pytest.raises(StorageError) as info:
            options.validate()
        errors.append(info.value)
    return [e.message for e in errors]


def test_backup_words_are_replaced_on_the_command_line() -> None:
    messages = _messages()
    assert any("Secret" in m for m in messages) and any("secretName" in m for m in messages)
    for message in messages:
        worded = for_command_line(message)
        for word in BACKUP_WORDS:
            assert word not in worded, (message, worded)
    assert "AWS_SECRET_ACCESS_KEY" in for_command_line(
        translate(_client("SignatureDoesNotMatch"), WHERE, "w").message
    )
    assert "--s3.region" in for_command_line(translate(_client("PermanentRedirect"), WHERE, "w").message)


def test_rewording_keeps_the_error_class_and_exit_code() -> None:
    error = reword_for_command_line(translate(NoCredentialsError(), WHERE, "writing"))
    assert isinstance(error, StorageError) and error.exit_code == 4 and error.reason == "StorageError"
    assert error.message.startswith(
        "no S3 credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
    )
