"""The storage errors' advice, in the words of where the settings came from.

``s3_errors`` and ``S3Options.validate`` speak a Backup's language: its fields (``s3.region``,
``s3.secretName``) and its Secret (keys ``access_key``/``secret_key``). ``tibackup dump`` has neither:
there the same advice must name its flags and the environment variables boto3 reads. This table is the
one place that says how each phrase reads on the command line.
"""

from __future__ import annotations

from tibackup.errors import TibackupError

_KEYS = "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
COMMAND_LINE: tuple[tuple[str, str], ...] = (
    (
        "set s3.secretName (keys access_key, secret_key) or give the backup an IAM role",
        f"set {_KEYS} (or an AWS profile, web identity or instance role)",
    ),
    ("check secret_key in the Secret", "check AWS_SECRET_ACCESS_KEY (or the AWS profile's secret key)"),
    ("check access_key in the Secret", "check AWS_ACCESS_KEY_ID (or the AWS profile's access key)"),
    ("check the Secret or the IAM role setup", f"check {_KEYS} or the AWS profile/role setup"),
    ("or fix the Secret", f"or fix {_KEYS}"),
    (
        "only one of access_key and secret_key is set: the Secret needs both keys",
        f"only one of {_KEYS.replace(' and ', ' or ')} is set: set both",
    ),
    ("set s3.bucket or use -o s3://bucket/prefix", "use -o s3://bucket/prefix"),
    ("create it or fix s3.bucket", "create it or fix the bucket in s3://BUCKET/… (-o of dump, -d of load)"),
    ("set s3 ca_bundle", "set --s3.ca-bundle"),
    ("put the path in s3.prefix", "write -o s3://bucket/prefix"),
    ("s3.storageClass", "--s3.storage-class"),
    ("s3.endpoint", "--s3.endpoint"),
    ("s3.region", "--s3.region"),
    ("s3.sse", "--s3.sse"),
    ("s3.acl", "--s3.acl"),
)


def for_command_line(message: str) -> str:
    """``message`` with a Backup's field and Secret names replaced by the flags and variables of
    ``tibackup dump``."""
    for backup_words, flag_words in COMMAND_LINE:
        if backup_words.startswith("s3.") and backup_words in message:
            message = message.replace("--" + backup_words, backup_words).replace(backup_words, flag_words)
        else:
            message = message.replace(backup_words, flag_words)
    return message


def reword_for_command_line(exc: TibackupError) -> TibackupError:
    """The same error (class, reason, exit code), its message put in the command line's words."""
    exc.args = (for_command_line(exc.message), *exc.args[1:])
    return exc
