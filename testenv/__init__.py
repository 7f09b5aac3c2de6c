"""Real servers for tests, the demo and the benchmarks (not shipped with tibackup).

- `testenv.mariadb.MariaDBServer`: a throwaway MariaDB 10.11 on a free port (binlog on, 64M buffer pool).
- `testenv.s3.make_s3_server()`: SeaweedFS (default) or Ceph RGW (`TIBACKUP_TEST_S3=ceph`), both checking
  signatures; `testenv.s3.clean_aws_env()` keeps the machine's AWS_* variables out of test processes.
- `testenv.sampledata`: demo schema, a sysbench-like wide table and many-table schemas, filled server-side.
- `python -m testenv up|down|status [--dir .run]`: detached servers plus `.run/env.sh`.
"""
