"""Real-client checks of s3edge with boto3, the way Synapse uses it.

Two client flavours are exercised:

* ModuleClient builds its client exactly as synapse-s3-storage-provider does:
  boto3.session.Session().client("s3", endpoint_url=..., aws_access_key_id=...,
  aws_secret_access_key=..., region_name=..., config=Config(signature_version="s3v4",
  request_checksum_calculation="when_required", response_checksum_validation="when_required")).
* ScriptClient builds it as the s3_media_upload script does:
  boto3.client("s3", endpoint_url=...) with credentials from the environment and
  boto3's default checksum settings (CRC32 headers over http, aws-chunked bodies
  with a CRC32 trailer over https).

Everything is configured by environment variables set by clients/run.sh:

  S3EDGE_ENDPOINT        http(s)://127.0.0.1:PORT of the proxy
  S3EDGE_LABEL           e.g. "moto/https", printed in every result line
  S3EDGE_RESULTS         file to which PASS/FAIL/SKIP lines are appended
  S3EDGE_BUCKET          the virtual bucket (media)
  AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY   the full-access credential
  AWS_CA_BUNDLE          the test CA, over https
  S3EDGE_SSEC            "1" when the upstream accepts SSE-C, else a reason to skip
  S3EDGE_RESTRICTED_KEY, S3EDGE_RESTRICTED_SECRET, S3EDGE_RESTRICTED_PREFIX
                         a credential that may only read and list under the prefix
  S3EDGE_UPSTREAM_ENDPOINT, S3EDGE_UPSTREAM_BUCKET, S3EDGE_UPSTREAM_PREFIX
                         where the virtual bucket lives (for direct checks), if reachable
  S3EDGE_UPSTREAM_KIND   "embedded" for the embedded demo store (skips what it cannot do)

Run: python3 clients/boto3_test.py  (stdlib unittest only).
"""

import io
import os
import random
import ssl
import string
import sys
import tempfile
import time
import traceback
import unittest
import urllib.error
import urllib.parse
import urllib.request

import boto3
import botocore
import botocore.config
from botocore.exceptions import ClientError

MiB = 1024 * 1024
READ_CHUNK_SIZE = 16 * 1024  # synapse-s3-storage-provider's READ_CHUNK_SIZE

ENDPOINT = os.environ.get("S3EDGE_ENDPOINT", "http://127.0.0.1:9000")
LABEL = os.environ.get("S3EDGE_LABEL", ENDPOINT)
RESULTS = os.environ.get("S3EDGE_RESULTS", "")
BUCKET = os.environ.get("S3EDGE_BUCKET", "media")
REGION = os.environ.get("S3EDGE_REGION", "us-east-1")
CA = os.environ.get("AWS_CA_BUNDLE") or None
SSEC = os.environ.get("S3EDGE_SSEC", "not declared by the runner")
RESTRICTED_KEY = os.environ.get("S3EDGE_RESTRICTED_KEY", "")
RESTRICTED_SECRET = os.environ.get("S3EDGE_RESTRICTED_SECRET", "")
RESTRICTED_PREFIX = os.environ.get("S3EDGE_RESTRICTED_PREFIX", "local_thumbnails/")
UPSTREAM_ENDPOINT = os.environ.get("S3EDGE_UPSTREAM_ENDPOINT", "")
UPSTREAM_BUCKET = os.environ.get("S3EDGE_UPSTREAM_BUCKET", "")
UPSTREAM_PREFIX = os.environ.get("S3EDGE_UPSTREAM_PREFIX", "")
# The embedded demo store (gofakes3 over files) has documented limits: no
# keys with an empty segment or a trailing "/", unpaginated listings (every
# page holds the whole prefix), no Cache-Control. Checks of those skip there.
EMBEDDED = os.environ.get("S3EDGE_UPSTREAM_KIND") == "embedded"

# Payloads, made once: 100 KiB (PutObject), exactly 8 MiB (a one-part
# multipart upload), 20 MiB (three 8 MiB parts sent concurrently).
SMALL = os.urandom(100 * 1024)
EIGHT = os.urandom(8 * MiB)
BIG = os.urandom(20 * MiB)
FILES = {}


def setUpModule():
    d = tempfile.mkdtemp(prefix="s3edge-boto3-")
    for name, data in (("empty", b""), ("small", SMALL), ("eight", EIGHT), ("big", BIG)):
        path = os.path.join(d, name)
        with open(path, "wb") as f:
            f.write(data)
        FILES[name] = path


def tearDownModule():
    for path in FILES.values():
        os.remove(path)
    if FILES:
        os.rmdir(os.path.dirname(next(iter(FILES.values()))))


def media_id():
    """A Synapse-like media id: 24 random letters."""
    return "".join(random.choices(string.ascii_letters, k=24))


def local_content_key():
    m = media_id()
    return f"local_content/{m[:2]}/{m[2:4]}/{m[4:]}"


def module_client(access_key=None, secret_key=None):
    """The client synapse-s3-storage-provider builds (s3_storage_provider.py)."""
    return boto3.session.Session().client(
        "s3",
        endpoint_url=ENDPOINT,
        aws_access_key_id=access_key or os.environ["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=secret_key or os.environ["AWS_SECRET_ACCESS_KEY"],
        region_name=REGION,
        config=botocore.config.Config(
            signature_version="s3v4",
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        ),
    )


def script_client():
    """The client scripts/s3_media_upload builds: defaults, credentials from env."""
    return boto3.client("s3", endpoint_url=ENDPOINT)


def read_16k(body):
    """Read a streaming body as the provider does: 16 KiB at a time."""
    out = io.BytesIO()
    try:
        while True:
            chunk = body.read(READ_CHUNK_SIZE)
            if not chunk:
                break
            out.write(chunk)
    finally:
        body.close()
    return out.getvalue()


def error_code(exc):
    return exc.response.get("Error", {}).get("Code")


def http_status(exc):
    return exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")


def ssl_context():
    if not ENDPOINT.startswith("https:"):
        return None
    return ssl.create_default_context(cafile=CA)


def fetch(url, method="GET", data=None):
    """urllib fetch; returns (status, body) and never raises on HTTP errors."""
    # Without a Content-Type urllib would send a form type with a body.
    headers = {"Content-Type": "application/octet-stream"} if data is not None else {}
    req = urllib.request.Request(url, method=method, data=data, headers=headers)
    try:
        with urllib.request.urlopen(req, context=ssl_context(), timeout=60) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def s3_order(keys):
    return sorted(keys, key=lambda k: k.encode("utf-8"))


class Case(unittest.TestCase):
    maxDiff = 2000

    def assertClientError(self, fn, code, status=None):
        with self.assertRaises(ClientError) as cm:
            fn()
        self.assertEqual(error_code(cm.exception), code, cm.exception.response)
        if status is not None:
            self.assertEqual(http_status(cm.exception), status, cm.exception.response)
        return cm.exception

    def assertBytesEqual(self, got, want, what="object"):
        # Never print megabytes on failure.
        if got != want:
            first = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
            self.fail(f"{what}: got {len(got)} bytes, want {len(want)}; first difference at byte {first}")


class _Flavour:
    """Transfers, the way Synapse's module and script do them, for one client flavour.

    A mixin: the concrete classes below add unittest.TestCase (through Case)
    and say which client they use."""

    make_client = None

    @classmethod
    def setUpClass(cls):
        cls.c = cls.make_client()

    def _upload_and_check(self, name, data, extra=None):
        key = local_content_key()
        args = {"StorageClass": "STANDARD"}
        args.update(extra or {})
        self.c.upload_file(FILES[name], BUCKET, key, ExtraArgs=args)
        sse = {k: v for k, v in (extra or {}).items() if k.startswith("SSECustomer")}
        head = self.c.head_object(Bucket=BUCKET, Key=key, **sse)
        self.assertEqual(head["ContentLength"], len(data))
        self.assertTrue(head.get("ETag"), "HEAD gave no ETag")
        resp = self.c.get_object(Bucket=BUCKET, Key=key, **sse)
        self.assertEqual(resp["ResponseMetadata"]["HTTPStatusCode"], 200)
        self.assertEqual(resp["ContentLength"], len(data))
        self.assertBytesEqual(read_16k(resp["Body"]), data)
        return key, sse

    def test_wire_encoding_is_the_one_synapse_sends(self):
        """Checks the suite itself: the client really sends the encoding this flavour is about."""
        seen = []

        def hook(request, **kwargs):
            seen.append({k.lower(): v for k, v in request.headers.items()})

        self.c.meta.events.register("before-send.s3.PutObject", hook)
        try:
            self._upload_and_check("small", SMALL)
        finally:
            self.c.meta.events.unregister("before-send.s3.PutObject", hook)
        self.assertEqual(len(seen), 1)
        h = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in seen[0].items()}
        sha = h.get("x-amz-content-sha256", "")
        if self.make_client is module_client or not ENDPOINT.startswith("https:"):
            self.assertRegex(sha, r"^[0-9a-f]{64}$", h)
            self.assertNotIn("aws-chunked", h.get("content-encoding", ""), h)
        if self.make_client is module_client:
            self.assertFalse([k for k in h if k.startswith("x-amz-checksum-")], h)
        elif ENDPOINT.startswith("https:"):
            self.assertEqual(sha, "STREAMING-UNSIGNED-PAYLOAD-TRAILER", h)
            self.assertIn("aws-chunked", h.get("content-encoding", ""), h)
            self.assertEqual(h.get("x-amz-trailer"), "x-amz-checksum-crc32", h)
        else:
            self.assertIn("x-amz-checksum-crc32", h)

    def test_upload_file_100KiB_get_16k_head(self):
        self._upload_and_check("small", SMALL)

    def test_upload_file_empty(self):
        self._upload_and_check("empty", b"")

    def test_upload_file_8MiB_one_part_multipart(self):
        self._upload_and_check("eight", EIGHT)

    def test_upload_file_20MiB_multipart_then_download_fileobj(self):
        key, _ = self._upload_and_check("big", BIG)
        seen = []

        def record(http_response, **kwargs):
            seen.append(http_response.headers.get("x-cache"))

        self.c.meta.events.register("after-call.s3.GetObject", record)
        try:
            for read in ("first", "second"):
                del seen[:]
                buf = io.BytesIO()
                # HEAD, then three 8 MiB ranged GETs in parallel with If-Match.
                self.c.download_fileobj(BUCKET, key, buf)
                self.assertBytesEqual(buf.getvalue(), BIG, f"download_fileobj, {read} read")
        finally:
            self.c.meta.events.unregister("after-call.s3.GetObject", record)
        # The second read is served from the cached slices (s3edge only:
        # the suite's direct setup has no X-Cache).
        self.assertEqual(len(seen), 3, seen)
        if seen[0] is not None:
            self.assertEqual(seen, ["HIT"] * 3, "second download_fileobj")

    def _ssec(self):
        if SSEC != "1":
            self.skipTest(f"SSE-C: {SSEC}")
        return {"SSECustomerKey": os.urandom(32), "SSECustomerAlgorithm": "AES256"}

    def test_ssec_upload_file_100KiB(self):
        self._upload_and_check("small", SMALL, self._ssec())

    def test_ssec_upload_file_20MiB_multipart_then_download_fileobj(self):
        key, sse = self._upload_and_check("big", BIG, self._ssec())
        buf = io.BytesIO()
        self.c.download_fileobj(BUCKET, key, buf, ExtraArgs=sse)
        self.assertBytesEqual(buf.getvalue(), BIG, "download_fileobj")

    def test_missing_key_get_is_NoSuchKey_404(self):
        self.assertClientError(lambda: self.c.get_object(Bucket=BUCKET, Key=local_content_key()), "NoSuchKey", 404)

    def test_missing_key_head_is_404_not_403(self):
        # s3_media_upload: int(e.response["Error"]["Code"]) == 404, anything else aborts.
        e = self.assertClientError(lambda: self.c.head_object(Bucket=BUCKET, Key=local_content_key()), "404", 404)
        self.assertEqual(int(e.response["Error"]["Code"]), 404)

    def _put_get_list(self, keys):
        for i, key in enumerate(keys):
            body = f"{i}:{key}".encode()
            if i % 2:
                self.c.put_object(Bucket=BUCKET, Key=key, Body=body, StorageClass="STANDARD")
            else:
                self.c.upload_file(FILES["small"], BUCKET, key, ExtraArgs={"StorageClass": "STANDARD"})
                body = SMALL
            with self.subTest(key=key):
                self.assertEqual(self.c.head_object(Bucket=BUCKET, Key=key)["ContentLength"], len(body))
                self.assertBytesEqual(read_16k(self.c.get_object(Bucket=BUCKET, Key=key)["Body"]), body)
                # The listing (encoding-type=url, decoded by botocore) gives back the exact key.
                prefix = key.rsplit("/", 1)[0] + "/"
                got = [o["Key"] for o in self.c.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])]
                self.assertIn(key, got)

    def test_special_keys_put_get_head_list(self):
        uid = media_id()
        self._put_get_list([
            f"remote_content/[2001:db8::1]:8448/ab/cd/{uid}",
            f"remote_thumbnail/matrix.example.org:8448/ab/cd/{uid}/32-32-image-jpeg-crop",
            f"local_content/sp {uid}/with space/ünïcødé ☃/x+y=z&a;b,c@d$e'(f)!~*#%?<>\"",
            f"remote_content/[::1]:8448/{uid}/%2F%25 encoded-looking",
        ])

    def test_folder_marker_and_empty_segment_keys(self):
        if EMBEDDED:
            self.skipTest("the embedded demo store refuses keys with an empty segment or a trailing /")
        uid = media_id()
        self._put_get_list([f"local_content/{uid}/folder/", f"local_content/{uid}/a//double/slash"])

    def test_range_get(self):
        key = local_content_key()
        self.c.put_object(Bucket=BUCKET, Key=key, Body=SMALL)
        r = self.c.get_object(Bucket=BUCKET, Key=key, Range="bytes=100-199")
        self.assertEqual(r["ResponseMetadata"]["HTTPStatusCode"], 206)
        self.assertEqual(r["ContentRange"], f"bytes 100-199/{len(SMALL)}")
        self.assertBytesEqual(r["Body"].read(), SMALL[100:200])
        r = self.c.get_object(Bucket=BUCKET, Key=key, Range="bytes=-10")
        self.assertBytesEqual(r["Body"].read(), SMALL[-10:])
        self.assertClientError(lambda: self.c.get_object(Bucket=BUCKET, Key=key, Range=f"bytes={len(SMALL)}-"), "InvalidRange", 416)

    def test_delete_objects_verbose_and_quiet(self):
        uid = media_id()
        keys = [f"del-{uid}/a", f"del-{uid}/b & <c>", f"del-{uid}/[::1]:8448/d"]
        for k in keys:
            self.c.put_object(Bucket=BUCKET, Key=k, Body=b"x")
        r = self.c.delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": k} for k in keys[:2]], "Quiet": False})
        self.assertEqual(sorted(d["Key"] for d in r.get("Deleted", [])), sorted(keys[:2]))
        self.assertFalse(r.get("Errors"))
        r = self.c.delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": keys[2]}], "Quiet": True})
        self.assertFalse(r.get("Deleted"))
        self.assertFalse(r.get("Errors"))
        self.assertEqual(self.c.list_objects_v2(Bucket=BUCKET, Prefix=f"del-{uid}/")["KeyCount"], 0)
        for k in keys:
            self.assertClientError(lambda: self.c.head_object(Bucket=BUCKET, Key=k), "404", 404)


class ModuleClient(_Flavour, Case):
    """synapse-s3-storage-provider's client: checksums when_required."""

    make_client = staticmethod(module_client)


class ScriptClient(_Flavour, Case):
    """s3_media_upload's client: boto3 defaults (CRC32; aws-chunked over https)."""

    make_client = staticmethod(script_client)


class Operations(Case):
    """Listing, copy, delete, errors, presigned URLs: the module's client."""

    @classmethod
    def setUpClass(cls):
        cls.c = module_client()

    def test_list_buckets_and_head_bucket(self):
        names = [b["Name"] for b in self.c.list_buckets()["Buckets"]]
        self.assertIn(BUCKET, names)
        self.c.head_bucket(Bucket=BUCKET)

    def test_unknown_bucket_is_NoSuchBucket(self):
        self.assertClientError(lambda: self.c.get_object(Bucket="no-such-bucket-s3edge", Key="k"), "NoSuchBucket", 404)

    def _list_fixture(self):
        base = f"list-{media_id()}/"
        rel = ["a/1", "a/2", "a/sub/3", "b/4", "c", "d e/5", "[x]:y/6", "é/7"]
        keys = [base + r for r in rel]
        for k in keys:
            self.c.put_object(Bucket=BUCKET, Key=k, Body=k.encode())
        want_prefixes = {base + p for p in ("a/", "b/", "d e/", "[x]:y/", "é/")}
        return base, keys, want_prefixes

    def test_list_objects_v2_prefix_delimiter_start_after(self):
        base, keys, want_prefixes = self._list_fixture()
        # Everything under the prefix, with the paginator.
        got = []
        for page in self.c.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=base):
            got += [o["Key"] for o in page.get("Contents", [])]
        self.assertEqual(got, s3_order(keys))
        # Sizes are right.
        r = self.c.list_objects_v2(Bucket=BUCKET, Prefix=base + "c")
        self.assertEqual([(o["Key"], o["Size"]) for o in r["Contents"]], [(base + "c", len(base + "c"))])
        # One level, with a delimiter.
        r = self.c.list_objects_v2(Bucket=BUCKET, Prefix=base, Delimiter="/")
        self.assertEqual({p["Prefix"] for p in r.get("CommonPrefixes", [])}, want_prefixes)
        self.assertEqual([o["Key"] for o in r.get("Contents", [])], [base + "c"])
        # ListObjects (v1), all of it.
        r = self.c.list_objects(Bucket=BUCKET, Prefix=base)
        self.assertEqual([o["Key"] for o in r.get("Contents", [])], s3_order(keys))

    def test_list_max_keys_start_after_marker_pagination(self):
        if EMBEDDED:
            self.skipTest("the embedded demo store does not paginate listings (max-keys, start-after and marker are ignored)")
        base, keys, want_prefixes = self._list_fixture()
        # StartAfter.
        r = self.c.list_objects_v2(Bucket=BUCKET, Prefix=base, StartAfter=base + "a/2")
        self.assertEqual([o["Key"] for o in r["Contents"]], s3_order(keys)[s3_order(keys).index(base + "a/2") + 1 :])
        # ListObjectsV2, two keys a page, continuation tokens.
        got, token, pages = [], None, 0
        while True:
            kw = {"ContinuationToken": token} if token else {}
            r = self.c.list_objects_v2(Bucket=BUCKET, Prefix=base, MaxKeys=2, **kw)
            pages += 1
            self.assertLessEqual(r["KeyCount"], 2)
            got += [o["Key"] for o in r.get("Contents", [])]
            if not r["IsTruncated"]:
                break
            token = r["NextContinuationToken"]
            self.assertLess(pages, 20, "pagination does not end")
        self.assertEqual(got, s3_order(keys))
        self.assertGreaterEqual(pages, 4)
        # With a delimiter, one entry a page (prefixes count as entries).
        prefixes, contents = set(), []
        for page in self.c.get_paginator("list_objects_v2").paginate(
            Bucket=BUCKET, Prefix=base, Delimiter="/", PaginationConfig={"PageSize": 1}
        ):
            self.assertLessEqual(len(page.get("Contents", [])) + len(page.get("CommonPrefixes", [])), 1)
            prefixes |= {p["Prefix"] for p in page.get("CommonPrefixes", [])}
            contents += [o["Key"] for o in page.get("Contents", [])]
        self.assertEqual(prefixes, want_prefixes)
        self.assertEqual(contents, [base + "c"])
        # ListObjects (v1) with Marker pagination.
        got, marker = [], ""
        for _ in range(20):
            r = self.c.list_objects(Bucket=BUCKET, Prefix=base, MaxKeys=3, Marker=marker)
            page = [o["Key"] for o in r.get("Contents", [])]
            self.assertLessEqual(len(page), 3)
            got += page
            if not r["IsTruncated"]:
                break
            marker = r.get("NextMarker") or page[-1]
        self.assertEqual(got, s3_order(keys))

    def test_list_objects_v2_encoding_type_url(self):
        base = f"enc-{media_id()}/"
        key = base + "d e+f/[::1]:8448/é&<x>"
        self.c.put_object(Bucket=BUCKET, Key=key, Body=b"x")
        # Asked explicitly, botocore leaves the encoded keys alone.
        r = self.c.list_objects_v2(Bucket=BUCKET, Prefix=base, EncodingType="url")
        self.assertEqual(r.get("EncodingType"), "url")
        raw = [o["Key"] for o in r["Contents"]]
        self.assertEqual(len(raw), 1)
        self.assertNotIn(" ", raw[0])
        self.assertEqual(urllib.parse.unquote_plus(raw[0]), key)
        r = self.c.list_objects_v2(Bucket=BUCKET, Prefix=base, Delimiter="/", EncodingType="url")
        self.assertEqual([urllib.parse.unquote_plus(p["Prefix"]) for p in r["CommonPrefixes"]], [base + "d e+f/"])

    def test_copy_object(self):
        src = f"remote_content/[2001:db8::1]:8448/ab/cd/{media_id()}"
        self.c.put_object(Bucket=BUCKET, Key=src, Body=SMALL, ContentType="image/png", Metadata={"origin": "test"})
        dst = local_content_key()
        r = self.c.copy_object(Bucket=BUCKET, Key=dst, CopySource={"Bucket": BUCKET, "Key": src})
        self.assertTrue(r["CopyObjectResult"]["ETag"])
        self.assertBytesEqual(read_16k(self.c.get_object(Bucket=BUCKET, Key=dst)["Body"]), SMALL)
        head = self.c.head_object(Bucket=BUCKET, Key=dst)
        self.assertEqual(head["ContentType"], "image/png")
        self.assertEqual(head["Metadata"], {"origin": "test"})
        dst2 = local_content_key()
        self.c.copy_object(
            Bucket=BUCKET, Key=dst2, CopySource={"Bucket": BUCKET, "Key": src},
            MetadataDirective="REPLACE", Metadata={"origin": "replaced"}, ContentType="image/jpeg",
        )
        head = self.c.head_object(Bucket=BUCKET, Key=dst2)
        self.assertEqual(head["Metadata"], {"origin": "replaced"})
        self.assertEqual(head["ContentType"], "image/jpeg")
        self.assertClientError(
            lambda: self.c.copy_object(Bucket=BUCKET, Key=local_content_key(), CopySource={"Bucket": BUCKET, "Key": src + "-missing"}),
            "NoSuchKey", 404,
        )

    def test_managed_copy_20MiB_is_upload_part_copy(self):
        # boto3's managed copy, like `aws s3 cp s3://... s3://...`, copies an
        # object above its 8 MiB multipart threshold in parts: HEAD, then
        # UploadPartCopy with x-amz-copy-source-range and If-Match per part.
        src = local_content_key()
        self.c.put_object(Bucket=BUCKET, Key=src, Body=BIG)
        dst = local_content_key()
        self.c.copy({"Bucket": BUCKET, "Key": src}, BUCKET, dst)
        self.assertBytesEqual(self.c.get_object(Bucket=BUCKET, Key=dst)["Body"].read(), BIG, "managed copy")

    def test_put_object_metadata_roundtrip(self):
        key = local_content_key()
        self.c.put_object(
            Bucket=BUCKET, Key=key, Body=b"hello", ContentType="text/plain; charset=utf-8",
            CacheControl="max-age=60", ContentDisposition='inline; filename="a b.txt"', Metadata={"k": "v"},
        )
        r = self.c.get_object(Bucket=BUCKET, Key=key)
        self.assertEqual(r["Body"].read(), b"hello")
        self.assertEqual(r["ContentType"], "text/plain; charset=utf-8")
        if not EMBEDDED:  # gofakes3 does not keep Cache-Control
            self.assertEqual(r["CacheControl"], "max-age=60")
        self.assertEqual(r["ContentDisposition"], 'inline; filename="a b.txt"')
        self.assertEqual(r["Metadata"], {"k": "v"})

    def test_delete_object(self):
        key = local_content_key()
        self.c.put_object(Bucket=BUCKET, Key=key, Body=b"x")
        self.assertEqual(self.c.get_object(Bucket=BUCKET, Key=key)["Body"].read(), b"x")
        r = self.c.delete_object(Bucket=BUCKET, Key=key)
        self.assertEqual(r["ResponseMetadata"]["HTTPStatusCode"], 204)
        self.assertClientError(lambda: self.c.get_object(Bucket=BUCKET, Key=key), "NoSuchKey", 404)
        self.assertClientError(lambda: self.c.head_object(Bucket=BUCKET, Key=key), "404", 404)
        # Deleting what is not there succeeds, as on S3.
        self.assertEqual(self.c.delete_object(Bucket=BUCKET, Key=key)["ResponseMetadata"]["HTTPStatusCode"], 204)

    def test_bad_secret_is_SignatureDoesNotMatch(self):
        bad = module_client(secret_key=os.environ["AWS_SECRET_ACCESS_KEY"] + "x")
        self.assertClientError(lambda: bad.list_objects_v2(Bucket=BUCKET), "SignatureDoesNotMatch", 403)
        self.assertClientError(lambda: bad.get_object(Bucket=BUCKET, Key="local_content/aa/bb/x"), "SignatureDoesNotMatch", 403)
        self.assertClientError(lambda: bad.put_object(Bucket=BUCKET, Key=local_content_key(), Body=b"x"), "SignatureDoesNotMatch", 403)

    def test_unknown_access_key_is_InvalidAccessKeyId(self):
        bad = module_client(access_key="AKIDUNKNOWN0000000000", secret_key="whatever-secret")
        self.assertClientError(lambda: bad.list_objects_v2(Bucket=BUCKET), "InvalidAccessKeyId", 403)
        self.assertClientError(lambda: bad.get_object(Bucket=BUCKET, Key="local_content/aa/bb/x"), "InvalidAccessKeyId", 403)

    def _presign(self, key, expires=300, method="get_object"):
        return self.c.generate_presigned_url(method, Params={"Bucket": BUCKET, "Key": key}, ExpiresIn=expires)

    def test_presigned_get(self):
        key = f"remote_content/[2001:db8::1]:8448/ab/cd/{media_id()} ü"
        self.c.put_object(Bucket=BUCKET, Key=key, Body=SMALL)
        status, body = fetch(self._presign(key))
        self.assertEqual(status, 200)
        self.assertBytesEqual(body, SMALL)

    def test_presigned_put(self):
        key = local_content_key()
        status, _ = fetch(self._presign(key, method="put_object"), method="PUT", data=SMALL)
        self.assertEqual(status, 200)
        self.assertBytesEqual(self.c.get_object(Bucket=BUCKET, Key=key)["Body"].read(), SMALL)

    def test_presigned_expired_is_403_AccessDenied(self):
        key = local_content_key()
        self.c.put_object(Bucket=BUCKET, Key=key, Body=b"x")
        url = self._presign(key, expires=1)
        time.sleep(2.5)
        status, body = fetch(url)
        self.assertEqual(status, 403, body[:500])
        self.assertIn(b"<Code>AccessDenied</Code>", body)

    def test_presigned_tampered_is_403_SignatureDoesNotMatch(self):
        key = local_content_key()
        self.c.put_object(Bucket=BUCKET, Key=key, Body=b"x")
        url = self._presign(key)
        i = url.index("X-Amz-Signature=") + len("X-Amz-Signature=")
        url = url[:i] + ("0" if url[i] != "0" else "1") + url[i + 1 :]
        status, body = fetch(url)
        self.assertEqual(status, 403, body[:500])
        self.assertIn(b"<Code>SignatureDoesNotMatch</Code>", body)


class SignatureV2(Case):
    """boto3's generate_presigned_url signs with Signature V2 by default
    against a custom endpoint; signature_version="s3" signs every request
    so."""

    @classmethod
    def setUpClass(cls):
        cls.c = module_client()
        cls.default = boto3.client("s3", endpoint_url=ENDPOINT, region_name=REGION)
        cls.v2 = boto3.client("s3", endpoint_url=ENDPOINT, region_name=REGION,
                              config=botocore.config.Config(signature_version="s3"))

    def test_default_presigned_get_is_v2(self):
        key = f"remote_content/example.org/ab/cd/{media_id()} +ü"
        self.c.put_object(Bucket=BUCKET, Key=key, Body=SMALL)
        url = self.default.generate_presigned_url(
            "get_object", ExpiresIn=300,
            Params={"Bucket": BUCKET, "Key": key, "ResponseContentType": "image/png",
                    "ResponseContentDisposition": 'inline; filename="a b.png"'})
        self.assertIn("AWSAccessKeyId=", url)
        with urllib.request.urlopen(url, context=ssl_context(), timeout=60) as r:
            self.assertEqual(r.status, 200)
            self.assertBytesEqual(r.read(), SMALL)
            self.assertEqual(r.headers["Content-Type"], "image/png")
            self.assertEqual(r.headers["Content-Disposition"], 'inline; filename="a b.png"')

    def test_v2_presigned_put_and_tamper(self):
        key = local_content_key()
        # V2 signs the Content-Type, which fetch sends.
        url = self.default.generate_presigned_url(
            "put_object", ExpiresIn=300,
            Params={"Bucket": BUCKET, "Key": key, "ContentType": "application/octet-stream"})
        status, _ = fetch(url, method="PUT", data=SMALL)
        self.assertEqual(status, 200)
        self.assertBytesEqual(self.c.get_object(Bucket=BUCKET, Key=key)["Body"].read(), SMALL)
        other = url.replace(key, key + "x")
        status, body = fetch(other, method="PUT", data=b"evil")
        self.assertEqual(status, 403, body[:500])
        self.assertIn(b"<Code>SignatureDoesNotMatch</Code>", body)
        self.assertClientError(lambda: self.c.head_object(Bucket=BUCKET, Key=key + "x"), "404", 404)

    def test_v2_signed_requests(self):
        key = local_content_key()
        self.v2.put_object(Bucket=BUCKET, Key=key, Body=SMALL, ContentType="image/jpeg", Metadata={"a": "b"})
        got = self.v2.get_object(Bucket=BUCKET, Key=key, Range="bytes=1-4")
        self.assertBytesEqual(got["Body"].read(), SMALL[1:5])
        self.assertEqual(self.v2.head_object(Bucket=BUCKET, Key=key)["Metadata"], {"a": "b"})
        keys = [o["Key"] for o in self.v2.list_objects(Bucket=BUCKET, Prefix=key)["Contents"]]
        self.assertEqual(keys, [key])
        self.v2.delete_object(Bucket=BUCKET, Key=key)
        self.assertClientError(lambda: self.c.head_object(Bucket=BUCKET, Key=key), "404", 404)


class Restricted(Case):
    """A credential that may only read and list under one prefix."""

    @classmethod
    def setUpClass(cls):
        if not RESTRICTED_KEY:
            raise unittest.SkipTest("no restricted credential configured for this setup")
        cls.c = module_client()
        cls.r = module_client(RESTRICTED_KEY, RESTRICTED_SECRET)
        m = media_id()
        cls.thumb = f"{RESTRICTED_PREFIX}{m[:2]}/{m[2:4]}/{m[4:]}/32-32-image-jpeg-crop"
        cls.other = local_content_key()
        cls.c.put_object(Bucket=BUCKET, Key=cls.thumb, Body=b"thumb")
        cls.c.put_object(Bucket=BUCKET, Key=cls.other, Body=b"other")

    def test_read_granted_prefix(self):
        self.assertEqual(read_16k(self.r.get_object(Bucket=BUCKET, Key=self.thumb)["Body"]), b"thumb")
        self.assertEqual(self.r.head_object(Bucket=BUCKET, Key=self.thumb)["ContentLength"], 5)

    def test_missing_key_in_granted_prefix_is_404(self):
        self.assertClientError(lambda: self.r.head_object(Bucket=BUCKET, Key=self.thumb + "-missing"), "404", 404)
        self.assertClientError(lambda: self.r.get_object(Bucket=BUCKET, Key=self.thumb + "-missing"), "NoSuchKey", 404)

    def test_read_outside_prefix_is_AccessDenied(self):
        self.assertClientError(lambda: self.r.get_object(Bucket=BUCKET, Key=self.other), "AccessDenied", 403)
        self.assertClientError(lambda: self.r.head_object(Bucket=BUCKET, Key=self.other), "403", 403)

    def test_write_and_delete_are_AccessDenied(self):
        self.assertClientError(lambda: self.r.put_object(Bucket=BUCKET, Key=self.thumb + "-new", Body=b"x"), "AccessDenied", 403)
        self.assertClientError(lambda: self.r.delete_object(Bucket=BUCKET, Key=self.thumb), "AccessDenied", 403)
        self.assertEqual(read_16k(self.c.get_object(Bucket=BUCKET, Key=self.thumb)["Body"]), b"thumb")

    def test_listing_is_filtered(self):
        keys = []
        for page in self.r.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
            keys += [o["Key"] for o in page.get("Contents", [])]
        self.assertIn(self.thumb, keys)
        outside = [k for k in keys if not k.startswith(RESTRICTED_PREFIX)]
        self.assertEqual(outside, [], "listing shows keys the credential may not read")
        r = self.r.list_objects_v2(Bucket=BUCKET, Delimiter="/")
        self.assertEqual([p["Prefix"] for p in r.get("CommonPrefixes", [])], [RESTRICTED_PREFIX])
        self.assertEqual(r.get("Contents", []), [])
        r = self.r.list_objects_v2(Bucket=BUCKET, Prefix=self.thumb)
        self.assertEqual([o["Key"] for o in r.get("Contents", [])], [self.thumb])

    def test_list_buckets_shows_granted_bucket(self):
        self.assertIn(BUCKET, [b["Name"] for b in self.r.list_buckets()["Buckets"]])


class UpstreamMapping(Case):
    """Objects land in the upstream bucket under the configured prefix, and only there."""

    @classmethod
    def setUpClass(cls):
        if not UPSTREAM_ENDPOINT:
            raise unittest.SkipTest("the upstream is not reachable directly in this setup")
        cls.c = module_client()
        cls.u = boto3.client(
            "s3", endpoint_url=UPSTREAM_ENDPOINT, aws_access_key_id="upstream", aws_secret_access_key="upstream-secret",
            region_name="us-east-1",
            config=botocore.config.Config(request_checksum_calculation="when_required", response_checksum_validation="when_required"),
        )

    def test_put_lands_under_prefix(self):
        key = f"remote_content/[2001:db8::1]:8448/ab/cd/{media_id()}"
        self.c.put_object(Bucket=BUCKET, Key=key, Body=b"mapped")
        r = self.u.get_object(Bucket=UPSTREAM_BUCKET, Key=UPSTREAM_PREFIX + key)
        self.assertEqual(r["Body"].read(), b"mapped")

    def test_upstream_object_visible_without_prefix(self):
        key = local_content_key()
        self.u.put_object(Bucket=UPSTREAM_BUCKET, Key=UPSTREAM_PREFIX + key, Body=b"from upstream")
        self.assertEqual(read_16k(self.c.get_object(Bucket=BUCKET, Key=key)["Body"]), b"from upstream")
        r = self.c.list_objects_v2(Bucket=BUCKET, Prefix=key)
        self.assertEqual([o["Key"] for o in r.get("Contents", [])], [key])

    def test_outside_prefix_is_invisible(self):
        outside = f"outside-{media_id()}"
        self.u.put_object(Bucket=UPSTREAM_BUCKET, Key=outside, Body=b"not yours")
        keys = []
        for page in self.c.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
            keys += [o["Key"] for o in page.get("Contents", [])]
        self.assertFalse([k for k in keys if outside in k], "an object outside the prefix is listed")
        # A key is bytes, not a path: "../x" must not climb out of the prefix.
        with self.assertRaises(ClientError) as cm:
            self.c.get_object(Bucket=BUCKET, Key="../" + outside)
        self.assertIn(http_status(cm.exception), (400, 403, 404), cm.exception.response)


class Result(unittest.TextTestResult):
    """Prints one PASS/FAIL/SKIP line per test and appends it to S3EDGE_RESULTS."""

    def _record(self, verdict, test, detail=""):
        name = test.id().replace("__main__.", "") if hasattr(test, "id") else str(test)
        line = f"{verdict} boto3 [{LABEL}] {name}"
        if detail:
            line += f" -- {detail}"
        print(line, flush=True)
        if RESULTS:
            with open(RESULTS, "a", encoding="utf-8") as f:
                f.write(line + "\n")

    def addSuccess(self, test):
        super().addSuccess(test)
        self._record("PASS", test)

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._record("FAIL", test, str(err[1]).splitlines()[0][:300] if str(err[1]) else err[0].__name__)

    def addError(self, test, err):
        super().addError(test, err)
        self._record("FAIL", test, f"{err[0].__name__}: {str(err[1]).splitlines()[0][:300] if str(err[1]) else ''}")

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            self._record("FAIL", subtest, f"{err[0].__name__}: {str(err[1]).splitlines()[0][:300] if str(err[1]) else ''}")

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self._record("SKIP", test, reason)


if __name__ == "__main__":
    unittest.main(testRunner=unittest.TextTestRunner(resultclass=Result, verbosity=1, stream=sys.stderr))
