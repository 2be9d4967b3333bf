"""What the tests do to the S3 server behind the client's back (tests/servers/src/s3.rs).

Run with the server venv's Python, which has boto3 (a dependency of moto):

    s3_admin.py ENDPOINT setup BUCKET...     create a user with an access key allowed
                                             everything on S3, and the buckets; prints
                                             the key id and the secret, one per line
    s3_admin.py ENDPOINT objects BUCKET      every object: key TAB size
    s3_admin.py ENDPOINT uploads BUCKET      every multipart upload in progress: key TAB id
    s3_admin.py ENDPOINT put BUCKET KEY      write stdin to an object
    s3_admin.py ENDPOINT start-upload BUCKET KEY   start a multipart upload and send one
                                             5 MiB part, as a run killed mid-upload leaves it

Every command but `setup` signs with the key in S3_KEY_ID and S3_SECRET.
"""

import json
import os
import sys

import boto3
from botocore.config import Config


def client(endpoint, service, key_id, secret):
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )


def main():
    endpoint, command, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    if command == "setup":
        # The server lets exactly these first requests in unsigned
        # (INITIAL_NO_AUTH_ACTION_COUNT); every later one needs this key.
        iam = client(endpoint, "iam", "setup", "setup")
        iam.create_user(UserName="backup")
        key = iam.create_access_key(UserName="backup")["AccessKey"]
        policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
        iam.put_user_policy(UserName="backup", PolicyName="s3", PolicyDocument=json.dumps(policy))
        s3 = client(endpoint, "s3", "setup", "setup")
        for bucket in args:
            s3.create_bucket(Bucket=bucket)
        print(key["AccessKeyId"])
        print(key["SecretAccessKey"])
        return
    s3 = client(endpoint, "s3", os.environ["S3_KEY_ID"], os.environ["S3_SECRET"])
    if command == "objects":
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=args[0]):
            for o in page.get("Contents", []):
                print(f"{o['Key']}\t{o['Size']}")
    elif command == "uploads":
        for u in s3.list_multipart_uploads(Bucket=args[0]).get("Uploads", []):
            print(f"{u['Key']}\t{u['UploadId']}")
    elif command == "put":
        s3.put_object(Bucket=args[0], Key=args[1], Body=sys.stdin.buffer.read())
    elif command == "start-upload":
        bucket, key = args
        upload = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
        s3.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=1, Body=b"x" * (5 << 20))
        print(upload)
    else:
        sys.exit(f"unknown command {command}")


if __name__ == "__main__":
    main()
