"""A real S3-compatible server on loopback for fairway's object store tests.

Starts moto's server (S3 and IAM, with request signatures checked), makes
an IAM user with full access, one whose keys may do nothing, and the
buckets named on the command line, prints one JSON line {"endpoint",
"access_key_id", "secret_access_key", "denied_access_key_id",
"denied_secret_access_key"} and serves until its standard input closes.

    python server.py [--port N] BUCKET...
"""

import argparse
import json
import os
import sys

# The first three requests (the IAM bootstrap below) go unsigned; every
# later one must carry valid credentials, as on AWS.
os.environ["INITIAL_NO_AUTH_ACTION_COUNT"] = "3"

from moto.server import ThreadedMotoServer  # noqa: E402
import boto3  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("buckets", nargs="*")
    args = parser.parse_args()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=args.port, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    def client(service: str, key_id: str, secret: str):
        return boto3.client(
            service,
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id=key_id,
            aws_secret_access_key=secret,
        )

    iam = client("iam", "bootstrap", "bootstrap")
    iam.create_user(UserName="fairway")
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    iam.put_user_policy(UserName="fairway", PolicyName="all", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName="fairway")["AccessKey"]
    s3 = client("s3", key["AccessKeyId"], key["SecretAccessKey"])
    for bucket in args.buckets:
        s3.create_bucket(Bucket=bucket)
    # A second user whose valid keys may do nothing: "access denied".
    admin = client("iam", key["AccessKeyId"], key["SecretAccessKey"])
    admin.create_user(UserName="nobody")
    denied = {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*"}]}
    admin.put_user_policy(UserName="nobody", PolicyName="none", PolicyDocument=json.dumps(denied))
    nobody = admin.create_access_key(UserName="nobody")["AccessKey"]
    print(
        json.dumps(
            {
                "endpoint": endpoint,
                "access_key_id": key["AccessKeyId"],
                "secret_access_key": key["SecretAccessKey"],
                "denied_access_key_id": nobody["AccessKeyId"],
                "denied_secret_access_key": nobody["SecretAccessKey"],
            }
        ),
        flush=True,
    )
    sys.stdin.read()
    server.stop()


if __name__ == "__main__":
    main()
