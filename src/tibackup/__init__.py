"""tibackup: logical backups of TiDB and MySQL-compatible databases into S3-compatible storage."""

__version__ = "0.1.0"
