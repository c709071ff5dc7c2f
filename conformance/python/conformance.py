"""cos-python-sdk-v5 flows for scripts/conformance.sh.

Drives the official Python SDK through every upload flow it has and reads each result back, comparing bytes.
The target comes from the environment (scripts/conformance.sh sets it):

  COS_SECRET_ID, COS_SECRET_KEY, COS_BUCKET, COS_REGION   keys, bucket (NAME-APPID) and region
  COS_SECURITY_TOKEN                                      optional (temporary keys)
  CONFORMANCE_MODE      custom-domain: requests carry Host: CONFORMANCE_DOMAIN (no bucket in the host)
                        vhost:         requests carry Host: BUCKET.cos.REGION.myqcloud.com
  CONFORMANCE_CONNECT   host:port to connect to instead of what the host names (the local server); empty for
                        real COS
  CONFORMANCE_DOMAIN    the custom domain (custom-domain mode)
  CONFORMANCE_SCHEME    http or https
  CONFORMANCE_PREFIX    every key starts with it, so runs never meet each other's objects
  CONFORMANCE_LOCAL     1 when the target is cos-testkit (enables checks only a local server can make)

Prints one line per check: `ok   python MODE: NAME` or `FAIL python MODE: NAME: WHY`, then `todo` lines for
flows that wait on other work. Exits 1 if a check failed. The counting is done by scripts/conformance.sh.
"""
import hashlib
import io
import os
import sys
import tempfile
import time
import traceback
from urllib.parse import unquote, urlsplit, urlunsplit

import crcmod
import requests
from qcloud_cos import CosConfig, CosS3Client
from qcloud_cos.cos_exception import CosServiceError

env = os.environ
SID, SKEY = env["COS_SECRET_ID"], env["COS_SECRET_KEY"]
TOKEN = env.get("COS_SECURITY_TOKEN") or None
BUCKET, REGION = env["COS_BUCKET"], env["COS_REGION"]
MODE = env.get("CONFORMANCE_MODE", "custom-domain")
CONNECT = env.get("CONFORMANCE_CONNECT", "")
DOMAIN = env.get("CONFORMANCE_DOMAIN", "")
SCHEME = env.get("CONFORMANCE_SCHEME", "http")
PREFIX = env.get("CONFORMANCE_PREFIX", "conformance/python/")
LOCAL = env.get("CONFORMANCE_LOCAL") == "1"
LABEL = f"python {MODE}"
MiB = 1024 * 1024

crc64 = crcmod.mkCrcFun(0x142F0E1EBA9EA3693, initCrc=0, xorOut=0xFFFFFFFFFFFFFFFF, rev=True)


def make_config(secret_id=SID, secret_key=SKEY):
    kw = dict(Region=REGION, SecretId=secret_id, SecretKey=secret_key, Token=TOKEN, Scheme=SCHEME)
    if MODE == "custom-domain":
        kw["Domain"] = DOMAIN
    elif CONNECT:  # vhost against the local server: connect there, keep Host: BUCKET.cos.REGION.myqcloud.com
        ip, port = CONNECT.rsplit(":", 1)
        kw.update(IP=ip, Port=int(port))
    return CosConfig(**kw)


client = CosS3Client(make_config())
wrong_key_client = CosS3Client(make_config(secret_key=SKEY + "x"))
wrong_id_client = CosS3Client(make_config(secret_id=SID + "UNKNOWN"))
created = []  # keys to remove afterwards (real COS)


def k(name):
    key = PREFIX + name
    created.append(key)
    return key


def rand(n):
    return os.urandom(n)


def md5_hex(b):
    return hashlib.md5(b).hexdigest()


def body(key, **kw):
    return client.get_object(Bucket=BUCKET, Key=key, **kw)["Body"].get_raw_stream().read()


def same(got, want, what="body"):
    if got != want:
        at = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
        raise AssertionError(f"{what}: {len(got)} bytes read back, {len(want)} sent, first difference at byte {at}")


def eq(got, want, what):
    if got != want:
        raise AssertionError(f"{what}: got {got!r}, want {want!r}")


def service_error(codes, status, fn):
    """Runs fn, which must fail with one of `codes` (a str or a tuple) and HTTP `status`."""
    codes = codes if isinstance(codes, tuple) else (codes,)
    try:
        fn()
    except CosServiceError as e:
        got = (e.get_status_code(), e.get_error_code())
        if got[0] != status or got[1] not in codes:
            raise AssertionError(f"expected {status} {'/'.join(codes)}, got {got[0]} {got[1]}")
        if not e.get_request_id():
            raise AssertionError("the error carries no RequestId")
        return e
    raise AssertionError(f"expected {status} {'/'.join(codes)}, the call succeeded")


def uploads_for(key):
    r = client.list_multipart_uploads(Bucket=BUCKET, Prefix=key)
    ups = r.get("Upload", [])
    ups = ups if isinstance(ups, list) else [ups]
    return [u for u in ups if u["Key"] == key]


def head(key):
    return client.head_object(Bucket=BUCKET, Key=key)


def check_crc(key, data):
    h = head(key)
    eq(int(h["Content-Length"]), len(data), "Content-Length")
    eq(int(h["x-cos-hash-crc64ecma"]), crc64(data), "x-cos-hash-crc64ecma")


def tmpfile(data):
    f = tempfile.NamedTemporaryFile(delete=False)
    f.write(data)
    f.close()
    return f.name


# ---------------------------------------------------------------------------------------------- the checks


def put_with_headers():
    key = k("put/headers.txt")
    data = rand(3000)
    r = client.put_object(Bucket=BUCKET, Key=key, Body=data, EnableMD5=True, ContentType="text/plain; charset=utf-8",
                          CacheControl="max-age=60", ContentDisposition='attachment; filename="h.txt"',
                          ContentLanguage="zh-CN", Expires="Wed, 21 Oct 2037 07:28:00 GMT",
                          Metadata={"x-cos-meta-author": "jane", "x-cos-meta-run": "conformance"},
                          StorageClass="STANDARD_IA")
    eq(r["ETag"].strip('"'), md5_hex(data), "ETag")
    h = head(key)
    for name, want in [("Content-Type", "text/plain; charset=utf-8"), ("Cache-Control", "max-age=60"),
                       ("Content-Disposition", 'attachment; filename="h.txt"'), ("Content-Language", "zh-CN"),
                       ("Expires", "Wed, 21 Oct 2037 07:28:00 GMT"), ("x-cos-meta-author", "jane"),
                       ("x-cos-meta-run", "conformance"), ("x-cos-storage-class", "STANDARD_IA")]:
        eq(h.get(name), want, name)
    eq(h["ETag"].strip('"'), md5_hex(data), "HEAD ETag")
    check_crc(key, data)
    same(body(key), data)


def put_acl_traffic_sse():
    key = k("put/acl-sse.bin")
    data = rand(20_000)
    client.put_object(Bucket=BUCKET, Key=key, Body=data, ACL="private", TrafficLimit="819200",
                      ServerSideEncryption="AES256")
    eq(head(key).get("x-cos-server-side-encryption"), "AES256", "x-cos-server-side-encryption")
    same(body(key), data)
    bad = k("put/bad-headers")
    service_error("InvalidArgument", 400, lambda: client.put_object(Bucket=BUCKET, Key=bad, Body=b"x",
                                                                    TrafficLimit="100"))
    service_error("NoSuchKey", 404, lambda: body(bad))


def put_odd_keys():
    for name in ["dir a/测试 +%~!'()*.txt", "emoji/🙂 and spaces", "deep/a/b/c/d/e/f/g.bin", "semi;colon=eq&amp?.txt"]:
        key = k("keys/" + name)
        data = name.encode() + rand(100)
        client.put_object(Bucket=BUCKET, Key=key, Body=data)
        same(body(key), data, f"body of {name!r}")


def put_empty_and_overwrite():
    key = k("put/empty")
    r = client.put_object(Bucket=BUCKET, Key=key, Body=b"")
    eq(r["ETag"].strip('"'), md5_hex(b""), "ETag of an empty object")
    eq(int(head(key)["Content-Length"]), 0, "Content-Length")
    same(body(key), b"")
    key = k("put/over")
    client.put_object(Bucket=BUCKET, Key=key, Body=b"first version, longer")
    client.put_object(Bucket=BUCKET, Key=key, Body=b"second")
    same(body(key), b"second")


def put_from_local_file_and_stream():
    data = rand(200_000)
    path = tmpfile(data)
    try:
        key = k("put/from-file.bin")
        r = client.put_object_from_local_file(Bucket=BUCKET, LocalFilePath=path, Key=key, EnableMD5=True)
        eq(r["ETag"].strip('"'), md5_hex(data), "ETag")
        same(body(key), data)
        key = k("put/from-fileobj.bin")
        with open(path, "rb") as f:
            client.put_object(Bucket=BUCKET, Key=key, Body=f)
        same(body(key), data)
    finally:
        os.unlink(path)


def put_content_md5_mismatch():
    key = k("put/bad-md5")
    import base64
    wrong = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    service_error(("BadDigest", "InvalidDigest"), 400,
                  lambda: client.put_object(Bucket=BUCKET, Key=key, Body=b"payload", ContentMD5=wrong))
    service_error("NoSuchKey", 404, lambda: body(key))


def ranged_read():
    key = k("put/range.bin")
    data = rand(5000)
    client.put_object(Bucket=BUCKET, Key=key, Body=data)
    same(body(key, Range="bytes=100-1099"), data[100:1100], "bytes=100-1099")
    same(body(key, Range="bytes=4990-"), data[4990:], "bytes=4990-")


def append_flow():
    key = k("append/log.txt")
    r = client.append_object(Bucket=BUCKET, Key=key, Position=0, Data=b"hello")
    eq(int(r["x-cos-next-append-position"]), 5, "next position after the first append")
    r = client.append_object(Bucket=BUCKET, Key=key, Position=5, Data=b" world")
    eq(int(r["x-cos-next-append-position"]), 11, "next position after the second append")
    chunk = rand(70_000)
    r = client.append_object(Bucket=BUCKET, Key=key, Position=11, Data=chunk)
    eq(int(r["x-cos-next-append-position"]), 11 + len(chunk), "next position after the third append")
    h = head(key)
    eq(h.get("x-cos-object-type"), "appendable", "x-cos-object-type")
    same(body(key), b"hello world" + chunk)
    check_crc(key, b"hello world" + chunk)


def append_errors():
    key = k("append/errors.txt")
    client.append_object(Bucket=BUCKET, Key=key, Position=0, Data=b"abc")
    service_error(("PositionNotEqualToLength", "AppendPositionErr"), 409,
                  lambda: client.append_object(Bucket=BUCKET, Key=key, Position=1, Data=b"x"))
    service_error(("PositionNotEqualToLength", "AppendPositionErr"), 409,
                  lambda: client.append_object(Bucket=BUCKET, Key=key, Position=0, Data=b"x"))
    same(body(key), b"abc", "body after refused appends")
    normal = k("append/normal.txt")
    client.put_object(Bucket=BUCKET, Key=normal, Body=b"abc")
    service_error(("ObjectNotAppendable", "AppendObjectNotAppendable"), 409,
                  lambda: client.append_object(Bucket=BUCKET, Key=normal, Position=3, Data=b"x"))
    same(body(normal), b"abc", "normal object after a refused append")


def multipart_flow():
    key = k("multipart/whole.bin")
    parts = [rand(MiB), rand(MiB + 3), rand(1234)]
    up = client.create_multipart_upload(Bucket=BUCKET, Key=key, ContentType="application/x-test",
                                        Metadata={"x-cos-meta-origin": "multipart"})["UploadId"]
    eq([u["UploadId"] for u in uploads_for(key)], [up], "uploads listed for the key")
    etags = []
    for i, d in enumerate(parts, 1):
        r = client.upload_part(Bucket=BUCKET, Key=key, Body=d, PartNumber=i, UploadId=up, EnableMD5=True)
        eq(r["ETag"].strip('"'), md5_hex(d), f"ETag of part {i}")
        etags.append(r["ETag"])
    # Part 2 again, other bytes: the last upload of a part number wins.
    parts[1] = rand(MiB + 7)
    etags[1] = client.upload_part(Bucket=BUCKET, Key=key, Body=parts[1], PartNumber=2, UploadId=up)["ETag"]
    lp = client.list_parts(Bucket=BUCKET, Key=key, UploadId=up)
    listed = lp["Part"] if isinstance(lp["Part"], list) else [lp["Part"]]
    eq([int(p["PartNumber"]) for p in listed], [1, 2, 3], "listed part numbers")
    eq([int(p["Size"]) for p in listed], [len(d) for d in parts], "listed part sizes")
    eq([p["ETag"].strip('"') for p in listed], [md5_hex(d) for d in parts], "listed part ETags")
    r = client.complete_multipart_upload(Bucket=BUCKET, Key=key, UploadId=up, MultipartUpload={
        "Part": [{"PartNumber": i, "ETag": e} for i, e in enumerate(etags, 1)]})
    eq(r.get("Key"), key, "Key in the Complete answer")
    whole = b"".join(parts)
    same(body(key), whole)
    check_crc(key, whole)
    h = head(key)
    eq(h.get("Content-Type"), "application/x-test", "Content-Type given at initiate")
    eq(h.get("x-cos-meta-origin"), "multipart", "x-cos-meta-origin given at initiate")
    eq(uploads_for(key), [], "uploads listed after complete")


def list_uploads_paging():
    keys = [k(f"listing/{i}.bin") for i in range(3)]
    ups = {client.create_multipart_upload(Bucket=BUCKET, Key=key)["UploadId"]: key for key in keys}
    seen, km, um = [], "", ""
    for _ in range(10):
        r = client.list_multipart_uploads(Bucket=BUCKET, Prefix=PREFIX + "listing/", MaxUploads=1, KeyMarker=km,
                                          UploadIdMarker=um)
        page = r.get("Upload", [])
        page = page if isinstance(page, list) else [page]
        if len(page) > 1:
            raise AssertionError(f"{len(page)} uploads on a page of MaxUploads=1")
        seen += [(u["Key"], u["UploadId"]) for u in page]
        if r.get("IsTruncated") != "true":
            break
        km, um = r["NextKeyMarker"], r["NextUploadIdMarker"]
    eq(sorted(seen), sorted((v, u) for u, v in ups.items()), "uploads seen over the pages")
    for u, key in ups.items():
        client.abort_multipart_upload(Bucket=BUCKET, Key=key, UploadId=u)


def list_parts_paging_and_prefixes():
    key = k("paging/parts.bin")
    up = client.create_multipart_upload(Bucket=BUCKET, Key=key)["UploadId"]
    sizes = {1: 1, 2: 2, 3: 3}
    for n, size in sizes.items():
        client.upload_part(Bucket=BUCKET, Key=key, Body=b"p" * size, PartNumber=n, UploadId=up)
    seen, marker = [], 0
    for _ in range(10):
        r = client.list_parts(Bucket=BUCKET, Key=key, UploadId=up, MaxParts=1, PartNumberMarker=marker)
        page = r.get("Part", [])
        page = page if isinstance(page, list) else [page]
        seen += [(int(p["PartNumber"]), int(p["Size"])) for p in page]
        if r.get("IsTruncated") != "true":
            break
        marker = int(r["NextPartNumberMarker"])
    eq(seen, sorted(sizes.items()), "parts seen over the pages")
    nested = k("paging/dir/nested.bin")
    up2 = client.create_multipart_upload(Bucket=BUCKET, Key=nested)["UploadId"]
    r = client.list_multipart_uploads(Bucket=BUCKET, Prefix=PREFIX + "paging/", Delimiter="/")
    ups = r.get("Upload", [])
    ups = ups if isinstance(ups, list) else [ups]
    cps = r.get("CommonPrefixes", [])
    cps = cps if isinstance(cps, list) else [cps]
    eq([u["Key"] for u in ups], [key], "uploads beside the delimiter")
    eq([c["Prefix"] for c in cps], [PREFIX + "paging/dir/"], "CommonPrefixes")
    client.abort_multipart_upload(Bucket=BUCKET, Key=key, UploadId=up)
    client.abort_multipart_upload(Bucket=BUCKET, Key=nested, UploadId=up2)


def multipart_errors():
    key = k("multipart/errors.bin")
    up = client.create_multipart_upload(Bucket=BUCKET, Key=key)["UploadId"]
    e1 = client.upload_part(Bucket=BUCKET, Key=key, Body=b"small", PartNumber=1, UploadId=up)["ETag"]
    e2 = client.upload_part(Bucket=BUCKET, Key=key, Body=b"tail", PartNumber=2, UploadId=up)["ETag"]
    service_error("EntityTooSmall", 400, lambda: client.complete_multipart_upload(
        Bucket=BUCKET, Key=key, UploadId=up, MultipartUpload={"Part": [{"PartNumber": 1, "ETag": e1},
                                                                       {"PartNumber": 2, "ETag": e2}]}))
    e3 = client.upload_part(Bucket=BUCKET, Key=key, Body=rand(MiB), PartNumber=3, UploadId=up)["ETag"]
    e4 = client.upload_part(Bucket=BUCKET, Key=key, Body=rand(MiB), PartNumber=4, UploadId=up)["ETag"]
    service_error("InvalidPartOrder", 400, lambda: client.complete_multipart_upload(
        Bucket=BUCKET, Key=key, UploadId=up, MultipartUpload={"Part": [{"PartNumber": 4, "ETag": e4},
                                                                       {"PartNumber": 3, "ETag": e3}]}))
    service_error("InvalidPart", 400, lambda: client.complete_multipart_upload(
        Bucket=BUCKET, Key=key, UploadId=up,
        MultipartUpload={"Part": [{"PartNumber": 3, "ETag": '"00000000000000000000000000000000"'}]}))
    service_error("InvalidPart", 400, lambda: client.complete_multipart_upload(
        Bucket=BUCKET, Key=key, UploadId=up, MultipartUpload={"Part": [{"PartNumber": 9, "ETag": e3}]}))
    service_error("NoSuchKey", 404, lambda: body(key))  # nothing was completed
    client.abort_multipart_upload(Bucket=BUCKET, Key=key, UploadId=up)
    eq(uploads_for(key), [], "uploads listed after abort")
    service_error("NoSuchUpload", 404, lambda: client.list_parts(Bucket=BUCKET, Key=key, UploadId=up))
    service_error("NoSuchUpload", 404, lambda: client.abort_multipart_upload(Bucket=BUCKET, Key=key, UploadId=up))
    service_error("NoSuchUpload", 404, lambda: client.upload_part(Bucket=BUCKET, Key=key, Body=b"x", PartNumber=1,
                                                                  UploadId=up))
    service_error("NoSuchUpload", 404, lambda: client.complete_multipart_upload(
        Bucket=BUCKET, Key=key, UploadId=up, MultipartUpload={"Part": [{"PartNumber": 3, "ETag": e3}]}))


def unknown_upload_id():
    key = k("multipart/unknown.bin")
    bogus = "1700000000deadbeefdeadbeefdeadbeefdeadbeefdeadbeefdeadbeefdeadbeef"
    service_error("NoSuchUpload", 404, lambda: client.upload_part(Bucket=BUCKET, Key=key, Body=b"x", PartNumber=1,
                                                                  UploadId=bogus))
    service_error("NoSuchUpload", 404, lambda: client.list_parts(Bucket=BUCKET, Key=key, UploadId=bogus))


def part_number_bounds():
    key = k("multipart/bounds.bin")
    up = client.create_multipart_upload(Bucket=BUCKET, Key=key)["UploadId"]
    for n in (0, 10001):
        service_error("InvalidArgument", 400, lambda: client.upload_part(Bucket=BUCKET, Key=key, Body=b"x",
                                                                         PartNumber=n, UploadId=up))
    eq(client.list_parts(Bucket=BUCKET, Key=key, UploadId=up).get("Part", []), [], "parts after refused numbers")
    client.abort_multipart_upload(Bucket=BUCKET, Key=key, UploadId=up)


def upload_file_threads():
    data = rand(12 * MiB + 17)
    path = tmpfile(data)
    progress = []
    try:
        key = k("upload_file/threads.bin")
        client.upload_file(Bucket=BUCKET, Key=key, LocalFilePath=path, PartSize=1, MAXThread=4, EnableMD5=True,
                           ContentType="application/x-big", progress_callback=lambda done, total: progress.append(
                               (done, total)))
    finally:
        os.unlink(path)
    same(body(key), data)
    check_crc(key, data)
    eq(head(key).get("Content-Type"), "application/x-big", "Content-Type")
    eq(progress[-1] if progress else None, (len(data), len(data)), "last progress callback")
    eq(uploads_for(key), [], "uploads left after upload_file")


def upload_file_small():
    data = rand(500_000)  # under PartSize: one PUT
    path = tmpfile(data)
    try:
        key = k("upload_file/small.bin")
        r = client.upload_file(Bucket=BUCKET, Key=key, LocalFilePath=path, PartSize=1)
    finally:
        os.unlink(path)
    eq(r["ETag"].strip('"'), md5_hex(data), "ETag")
    same(body(key), data)


def upload_file_resumes():
    data = rand(5 * MiB + 100)
    path = tmpfile(data)
    key = k("upload_file/resume.bin")
    try:
        up = client.create_multipart_upload(Bucket=BUCKET, Key=key)["UploadId"]
        for i in (1, 2):  # an earlier run got two parts through
            client.upload_part(Bucket=BUCKET, Key=key, Body=data[(i - 1) * MiB:i * MiB], PartNumber=i, UploadId=up)
        client.upload_file(Bucket=BUCKET, Key=key, LocalFilePath=path, PartSize=1, MAXThread=2)
    finally:
        os.unlink(path)
    same(body(key), data)
    check_crc(key, data)
    # The SDK found the unfinished upload through List Multipart Uploads and List Parts and completed it:
    # none is left behind (a new upload would have left the first one listed).
    eq(uploads_for(key), [], "uploads left after a resumed upload_file")
    service_error("NoSuchUpload", 404, lambda: client.list_parts(Bucket=BUCKET, Key=key, UploadId=up))


def upload_from_buffer():
    data = rand(2 * MiB + 500)
    key = k("upload_file_from_buffer/stream.bin")
    client.upload_file_from_buffer(Bucket=BUCKET, Key=key, Body=io.BytesIO(data), PartSize=1, MAXThread=2)
    same(body(key), data)
    check_crc(key, data)
    key = k("upload_file_from_buffer/short.bin")
    client.upload_file_from_buffer(Bucket=BUCKET, Key=key, Body=io.BytesIO(b"short stream"), PartSize=1)
    same(body(key), b"short stream")


def send(method, url, **kw):
    """An HTTP request to a URL the SDK made, sent to CONFORMANCE_CONNECT when set (Host kept)."""
    headers = dict(kw.pop("headers", {}))
    if CONNECT:
        parts = urlsplit(url)
        headers["Host"] = parts.netloc
        url = urlunsplit((parts.scheme, CONNECT, parts.path, parts.query, ""))
    return requests.request(method, url, headers=headers, timeout=60, **kw)


def presigned_urls():
    key = k("presigned/put.bin")
    data = rand(40_000)
    url = client.get_presigned_url(Bucket=BUCKET, Key=key, Method="PUT", Expired=300)
    r = send("PUT", url, data=data)
    eq(r.status_code, 200, f"presigned PUT status ({r.text[:200]})")
    eq(r.headers.get("ETag", "").strip('"'), md5_hex(data), "ETag of the presigned PUT")
    same(body(key), data)
    r = send("GET", client.get_presigned_download_url(Bucket=BUCKET, Key=key, Expired=300))
    eq(r.status_code, 200, "presigned GET status")
    same(r.content, data, "presigned GET body")
    # A URL signed for another key, or altered, is refused.
    other = client.get_presigned_url(Bucket=BUCKET, Key=key + ".other", Method="PUT", Expired=300)
    forged = url.replace(urlsplit(url).query, urlsplit(other).query)
    r = send("PUT", forged, data=b"forged")
    eq(r.status_code, 403, "status of a PUT with another key's signature")
    same(body(key), data, "body after the refused PUT")
    # A URL whose signature ended before now is refused too.
    expired = client.get_presigned_url(Bucket=BUCKET, Key=key, Method="PUT", Expired=-30)
    r = send("PUT", expired, data=b"late")
    eq(r.status_code, 403, "status of a PUT with an expired URL")
    eq(r.headers.get("Content-Type", "").split(";")[0], "application/xml", "Content-Type of the error")
    if b"<Code>AccessDenied</Code>" not in r.content:
        raise AssertionError(f"expired URL: {r.content[:300]!r}")
    same(body(key), data, "body after the refused PUT")


def header_auth_from_sdk():
    key = k("presigned/get_auth.txt")
    data = b"signed with get_auth"
    auth = client.get_auth(Method="PUT", Bucket=BUCKET, Key=key, Expired=300,
                           Headers={"Content-Type": "text/plain"})
    url = client.get_object_url(Bucket=BUCKET, Key=key)
    headers = {"Authorization": auth, "Content-Type": "text/plain"}
    if TOKEN:
        headers["x-cos-security-token"] = TOKEN
    r = send("PUT", url, data=data, headers=headers)
    eq(r.status_code, 200, f"PUT status ({r.text[:200]})")
    same(body(key), data)
    eq(head(key).get("Content-Type"), "text/plain", "Content-Type")


def wrong_keys_rejected():
    key = k("errors/wrong-key")
    e = service_error("SignatureDoesNotMatch", 403,
                      lambda: wrong_key_client.put_object(Bucket=BUCKET, Key=key, Body=b"x"))
    service_error("SignatureDoesNotMatch", 403,
                  lambda: wrong_key_client.append_object(Bucket=BUCKET, Key=key, Position=0, Data=b"x"))
    service_error("SignatureDoesNotMatch", 403,
                  lambda: wrong_key_client.create_multipart_upload(Bucket=BUCKET, Key=key))
    service_error("InvalidAccessKeyId", 403, lambda: wrong_id_client.put_object(Bucket=BUCKET, Key=key, Body=b"x"))
    service_error("NoSuchKey", 404, lambda: body(key))  # nothing was stored
    del e


def missing_key():
    service_error("NoSuchKey", 404, lambda: body(k("errors/never-written")))
    try:
        head(k("errors/never-written"))
    except CosServiceError as e:
        eq(e.get_status_code(), 404, "HEAD status of a missing key")
    else:
        raise AssertionError("HEAD of a missing key succeeded")


def wrong_bucket_in_host():
    other = CosS3Client(make_config())
    service_error("NoSuchBucket", 404, lambda: other.put_object(Bucket="nosuchbucket-1250000000", Key=k("x"),
                                                                Body=b"x"))


def delete_then_missing():
    key = k("delete/me")
    client.put_object(Bucket=BUCKET, Key=key, Body=b"short-lived")
    same(body(key), b"short-lived")
    client.delete_object(Bucket=BUCKET, Key=key)
    service_error("NoSuchKey", 404, lambda: body(key))


def download_file_small_and_ranged():
    # Under PartSize (MiB): one GET to a temporary file renamed into place.
    small = rand(300_000)
    key = k("download/small.bin")
    client.put_object(Bucket=BUCKET, Key=key, Body=small)
    d = tempfile.mkdtemp()
    try:
        dest = os.path.join(d, "small.bin")
        client.download_file(Bucket=BUCKET, Key=key, DestFilePath=dest)
        with open(dest, "rb") as f:
            same(f.read(), small, "small download")
        # Above PartSize: ranged GETs on 4 threads, the SDK's CRC-64 check against x-cos-hash-crc64ecma,
        # progress to the end, the SDK's checkpoint record in a directory of ours.
        big = rand(7 * MiB + 12345)
        key = k("download/ranged.bin")
        src = tmpfile(big)
        try:
            client.upload_file(Bucket=BUCKET, Key=key, LocalFilePath=src, PartSize=2, MAXThread=2)
        finally:
            os.unlink(src)
        progress = []
        dest = os.path.join(d, "ranged.bin")
        client.download_file(Bucket=BUCKET, Key=key, DestFilePath=dest, PartSize=1, MAXThread=4, EnableCRC=True,
                             DumpRecordDir=d, progress_callback=lambda done, total: progress.append((done, total)))
        with open(dest, "rb") as f:
            same(f.read(), big, "ranged download")
        eq(progress[-1] if progress else None, (len(big), len(big)), "last progress callback")
        eq(sorted(os.listdir(d)), ["ranged.bin", "small.bin"], "files left beside the downloads")
        # A missing key: NoSuchKey (from the HEAD), nothing written.
        e = None
        try:
            client.download_file(Bucket=BUCKET, Key=k("download/never-written"), DestFilePath=os.path.join(d, "x"))
        except CosServiceError as err:
            e = err
        eq(e.get_status_code() if e else None, 404, "status of download_file for a missing key")
        eq(os.path.exists(os.path.join(d, "x")), False, "destination written for a missing key")
    finally:
        for name in os.listdir(d):
            os.unlink(os.path.join(d, name))
        os.rmdir(d)


def get_object_conditions():
    key = k("download/cond.txt")
    client.put_object(Bucket=BUCKET, Key=key, Body=b"conditional")
    etag = head(key)["ETag"]
    same(body(key, IfMatch=etag), b"conditional", "If-Match on the ETag")
    service_error("PreconditionFailed", 412, lambda: body(key, IfMatch='"0123"'))
    same(body(key, IfNoneMatch='"0123"'), b"conditional", "If-None-Match on another ETag")
    # If-None-Match on the object's own ETag: 304 Not Modified without a body. (This SDK's get_object cannot take
    # a 304 without a Content-Length, so a presigned GET URL of the SDK's, sent by a plain HTTP client, asks.)
    r = send("GET", client.get_presigned_download_url(Bucket=BUCKET, Key=key, Expired=300),
             headers={"If-None-Match": etag})
    eq((r.status_code, r.content), (304, b""), "If-None-Match on the object's own ETag")


def listed(r):
    return ([c["Key"] for c in r.get("Contents", [])], [c["Prefix"] for c in r.get("CommonPrefixes", [])])


def list_objects_prefix_delimiter_pages():
    base = PREFIX + "list/"
    names = ["a.txt", "b/1", "b/2", "c d/ü 😀.txt", "c d/x", "e+f&g.txt", "z/deep/1"]
    datas = {}
    for n in names:
        datas[n] = rand(10 + len(datas))
        client.put_object(Bucket=BUCKET, Key=k("list/" + n), Body=datas[n])
    # Everything under the prefix, sorted, with sizes and ETags; keys decoded by the SDK (encoding-type=url).
    r = client.list_objects(Bucket=BUCKET, Prefix=base)
    eq(listed(r), ([base + n for n in sorted(names)], []), "keys under the prefix")
    eq(r.get("IsTruncated"), "false", "IsTruncated")
    for c in r["Contents"]:
        n = c["Key"][len(base):]
        eq(int(c["Size"]), len(datas[n]), f"Size of {n}")
        eq(c["ETag"].strip('"'), md5_hex(datas[n]), f"ETag of {n}")
    # With a delimiter: the objects beside it and one CommonPrefixes entry per "directory".
    r = client.list_objects(Bucket=BUCKET, Prefix=base, Delimiter="/")
    eq(listed(r), ([base + "a.txt", base + "e+f&g.txt"], [base + "b/", base + "c d/", base + "z/"]),
       "keys and CommonPrefixes with Delimiter=/")
    # Pages of two: the markers walk the same entries, no entry twice, none left out.
    seen_keys, seen_prefixes, marker, pages = [], [], "", 0
    for _ in range(10):
        r = client.list_objects(Bucket=BUCKET, Prefix=base, Delimiter="/", MaxKeys=2, Marker=marker)
        ks, ps = listed(r)
        if len(ks) + len(ps) > 2:
            raise AssertionError(f"{len(ks) + len(ps)} entries on a page of MaxKeys=2")
        seen_keys += ks
        seen_prefixes += ps
        pages += 1
        if r.get("IsTruncated") != "true":
            break
        marker = r["NextMarker"]
    eq((seen_keys, seen_prefixes), ([base + "a.txt", base + "e+f&g.txt"], [base + "b/", base + "c d/", base + "z/"]),
       "entries seen over the pages")
    eq(pages, 3, "pages of MaxKeys=2 for 5 entries")
    # Without a delimiter, paging one key at a time with NextMarker sees every key.
    seen, marker = [], ""
    for _ in range(20):
        r = client.list_objects(Bucket=BUCKET, Prefix=base, MaxKeys=1, Marker=marker)
        seen += listed(r)[0]
        if r.get("IsTruncated") != "true":
            break
        marker = r["NextMarker"]
    eq(seen, [base + n for n in sorted(names)], "keys seen one page at a time")
    # EncodingType=url asked by the caller: the SDK leaves the keys encoded, as COS sent them.
    r = client.list_objects(Bucket=BUCKET, Prefix=base + "c d/", EncodingType="url")
    eq(sorted(unquote(c["Key"]) for c in r["Contents"]), [base + "c d/x", base + "c d/ü 😀.txt"],
       "url-decoded keys")
    if not any("%" in c["Key"] for c in r["Contents"]):
        raise AssertionError(f"EncodingType=url, keys not encoded: {[c['Key'] for c in r['Contents']]}")
    # A prefix nothing starts with: an empty answer, not an error.
    eq(listed(client.list_objects(Bucket=BUCKET, Prefix=base + "nothing/")), ([], []), "listing of an empty prefix")


def delete_object_and_objects():
    base = PREFIX + "del/"
    for n in ["one", "two 测试 ü", "three", "keep"]:
        client.put_object(Bucket=BUCKET, Key=k("del/" + n), Body=n.encode())
    r = client.delete_object(Bucket=BUCKET, Key=base + "one")
    service_error("NoSuchKey", 404, lambda: body(base + "one"))
    # Deleting a key that is not there succeeds, as on COS.
    client.delete_object(Bucket=BUCKET, Key=base + "one")
    r = client.delete_objects(Bucket=BUCKET, Delete={"Quiet": "false", "Object": [
        {"Key": base + "two 测试 ü"}, {"Key": base + "three"}, {"Key": base + "never-written"}]})
    deleted = r.get("Deleted", [])
    deleted = deleted if isinstance(deleted, list) else [deleted]
    eq(sorted(d["Key"] for d in deleted), sorted([base + "two 测试 ü", base + "three", base + "never-written"]),
       "Deleted keys")
    eq(r.get("Error", []), [], "Error entries")
    eq(listed(client.list_objects(Bucket=BUCKET, Prefix=base))[0], [base + "keep"], "keys left after deleting")
    same(body(base + "keep"), b"keep", "the object not deleted")


def copy_object_directives():
    src = k("copy/src.txt")
    data = rand(70_000)
    client.put_object(Bucket=BUCKET, Key=src, Body=data, ContentType="text/x-source", CacheControl="max-age=5",
                      Metadata={"x-cos-meta-origin": "source"})
    source = {"Bucket": BUCKET, "Key": src, "Region": REGION}
    # Copy (the default): body, Content-Type and metadata of the source.
    dst = k("copy/dst-copy.txt")
    r = client.copy_object(Bucket=BUCKET, Key=dst, CopySource=source)
    eq(r["ETag"].strip('"'), md5_hex(data), "ETag of the copy")
    same(body(dst), data, "body of the copy")
    h = head(dst)
    eq((h.get("Content-Type"), h.get("Cache-Control"), h.get("x-cos-meta-origin")),
       ("text/x-source", "max-age=5", "source"), "headers kept by the Copy directive")
    check_crc(dst, data)
    # Replaced: the request's headers and metadata, none of the source's.
    dst2 = k("copy/dst-replaced.txt")
    client.copy_object(Bucket=BUCKET, Key=dst2, CopySource=source, CopyStatus="Replaced", ContentType="text/x-new",
                       Metadata={"x-cos-meta-note": "replaced"})
    same(body(dst2), data, "body of the Replaced copy")
    h = head(dst2)
    eq((h.get("Content-Type"), h.get("x-cos-meta-note"), h.get("x-cos-meta-origin"), h.get("Cache-Control")),
       ("text/x-new", "replaced", None, None), "headers after the Replaced directive")
    # Onto itself: refused with Copy, allowed with Replaced (COS's way of changing an object's metadata).
    service_error("InvalidRequest", 400, lambda: client.copy_object(Bucket=BUCKET, Key=src, CopySource=source))
    client.copy_object(Bucket=BUCKET, Key=src, CopySource=source, CopyStatus="Replaced", ContentType="text/x-self")
    eq(head(src).get("Content-Type"), "text/x-self", "Content-Type after a Replaced copy onto itself")
    same(body(src), data, "body after a Replaced copy onto itself")
    # A source that is not there: NoSuchKey, nothing written.
    gone = k("copy/gone.txt")
    service_error("NoSuchKey", 404, lambda: client.copy_object(
        Bucket=BUCKET, Key=gone, CopySource={"Bucket": BUCKET, "Key": PREFIX + "copy/never-written", "Region": REGION}))
    service_error("NoSuchKey", 404, lambda: body(gone))


def tagging_round_trip():
    key = k("tagging/t.txt")
    client.put_object(Bucket=BUCKET, Key=key, Body=b"tagged")
    client.put_object_tagging(Bucket=BUCKET, Key=key, Tagging={"TagSet": {"Tag": [
        {"Key": "team", "Value": "storage"}, {"Key": "run", "Value": "conformance"}]}})
    tags = client.get_object_tagging(Bucket=BUCKET, Key=key)["TagSet"]["Tag"]
    tags = tags if isinstance(tags, list) else [tags]
    eq(sorted((t["Key"], t["Value"]) for t in tags), [("run", "conformance"), ("team", "storage")], "tags")
    eq(head(key).get("x-cos-tagging-count"), "2", "x-cos-tagging-count")
    client.delete_object_tagging(Bucket=BUCKET, Key=key)
    eq(client.get_object_tagging(Bucket=BUCKET, Key=key).get("TagSet") or None, None, "tags after delete")
    same(body(key), b"tagged", "body kept by tagging calls")
    service_error("NoSuchKey", 404, lambda: client.get_object_tagging(Bucket=BUCKET, Key=PREFIX + "tagging/none"))


def object_acl_round_trip():
    key = k("acl/a.txt")
    client.put_object(Bucket=BUCKET, Key=key, Body=b"acl")
    client.put_object_acl(Bucket=BUCKET, Key=key, ACL="public-read")
    r = client.get_object_acl(Bucket=BUCKET, Key=key)
    grants = r["AccessControlList"]["Grant"]
    grants = grants if isinstance(grants, list) else [grants]
    eq(any(g["Permission"] == "READ" and "AllUsers" in (g["Grantee"].get("URI") or "") for g in grants), True,
       "public-read gives AllUsers READ")
    eq(r["Owner"]["ID"].startswith("qcs::cam::uin/"), True, "owner ID")
    client.put_object_acl(Bucket=BUCKET, Key=key, ACL="private")
    grants = client.get_object_acl(Bucket=BUCKET, Key=key)["AccessControlList"]["Grant"]
    grants = grants if isinstance(grants, list) else [grants]
    eq(any("AllUsers" in (g["Grantee"].get("URI") or "") for g in grants), False, "private: no AllUsers grant")
    same(body(key), b"acl", "body kept by ACL calls")


def bucket_acl_round_trip():
    acl = client.get_bucket_acl(Bucket=BUCKET)
    eq(acl["Owner"]["ID"].startswith("qcs::cam::uin/"), True, "owner ID")
    if not LOCAL:
        return  # a shared bucket's ACL is not ours to change
    client.put_bucket_acl(Bucket=BUCKET, ACL="public-read")
    grants = client.get_bucket_acl(Bucket=BUCKET)["AccessControlList"]["Grant"]
    grants = grants if isinstance(grants, list) else [grants]
    eq(any(g["Permission"] == "READ" and "AllUsers" in (g["Grantee"].get("URI") or "") for g in grants), True,
       "public-read gives AllUsers READ")
    client.put_bucket_acl(Bucket=BUCKET, ACL="private")
    grants = client.get_bucket_acl(Bucket=BUCKET)["AccessControlList"]["Grant"]
    grants = grants if isinstance(grants, list) else [grants]
    eq([g["Permission"] for g in grants], ["FULL_CONTROL"], "private: the owner's grant only")


def bucket_cors_round_trip():
    if not LOCAL:
        return  # a shared bucket's CORS rules are not ours to change
    client.put_bucket_cors(Bucket=BUCKET, CORSConfiguration={"CORSRule": [{
        "ID": "app", "AllowedOrigin": ["https://app.example.com"], "AllowedMethod": ["PUT", "GET"],
        "AllowedHeader": ["*"], "ExposeHeader": ["ETag"], "MaxAgeSeconds": 600}]})
    rules = client.get_bucket_cors(Bucket=BUCKET)["CORSRule"]
    rules = rules if isinstance(rules, list) else [rules]
    eq(len(rules), 1, "rules read back")
    origins = rules[0]["AllowedOrigin"]
    eq(origins if isinstance(origins, list) else [origins], ["https://app.example.com"], "AllowedOrigin")
    eq(str(rules[0]["MaxAgeSeconds"]), "600", "MaxAgeSeconds")
    client.delete_bucket_cors(Bucket=BUCKET)
    service_error("NoSuchCORSConfiguration", 404, lambda: client.get_bucket_cors(Bucket=BUCKET))


def get_object_response_overrides():
    key = k("get/overrides.txt")
    data = rand(100)
    client.put_object(Bucket=BUCKET, Key=key, Body=data, ContentType="text/plain")
    r = client.get_object(Bucket=BUCKET, Key=key, ResponseContentType="application/x-override",
                          ResponseContentDisposition='attachment; filename="o.bin"',
                          ResponseCacheControl="no-cache", ResponseContentLanguage="fr")
    same(r["Body"].get_raw_stream().read(), data, "body of an overridden GET")
    for name, want in [("Content-Type", "application/x-override"),
                       ("Content-Disposition", 'attachment; filename="o.bin"'),
                       ("Cache-Control", "no-cache"), ("Content-Language", "fr")]:
        eq(r.get(name), want, name)
    eq(head(key).get("Content-Type"), "text/plain", "the stored Content-Type is unchanged")


CHECKS = [
    ("put_object with Content-Type, Cache-Control, Disposition, Language, Expires, metadata, storage class, MD5",
     put_with_headers),
    ("put_object with x-cos-acl, x-cos-traffic-limit, SSE-COS; a traffic limit under the minimum is refused",
     put_acl_traffic_sse),
    ("put_object with unicode, reserved and deep keys", put_odd_keys),
    ("put_object of an empty body; a second put overwrites", put_empty_and_overwrite),
    ("put_object_from_local_file and a file object body", put_from_local_file_and_stream),
    ("put_object with a wrong Content-MD5 is refused and stores nothing", put_content_md5_mismatch),
    ("get_object with Range reads back the slices", ranged_read),
    ("append_object three times; HEAD says appendable; CRC-64 of the whole", append_flow),
    ("append_object at a wrong position, and to a normal object: 409, body unchanged", append_errors),
    ("multipart: initiate with headers, list uploads, parts with MD5, re-upload a part, list parts, complete",
     multipart_flow),
    ("list_multipart_uploads pages one upload at a time with key and upload-id markers", list_uploads_paging),
    ("list_parts pages with MaxParts and PartNumberMarker; list_multipart_uploads with a delimiter",
     list_parts_paging_and_prefixes),
    ("multipart errors: EntityTooSmall, InvalidPartOrder, InvalidPart, abort, then NoSuchUpload everywhere",
     multipart_errors),
    ("unknown upload id: NoSuchUpload for upload_part and list_parts", unknown_upload_id),
    ("upload_part numbers 0 and 10001: InvalidArgument, nothing stored", part_number_bounds),
    ("upload_file: 12 MiB in 1 MiB parts, 4 threads, MD5, progress callback", upload_file_threads),
    ("upload_file under the part size: one PUT", upload_file_small),
    ("upload_file resumes an unfinished multipart upload found by listing", upload_file_resumes),
    ("upload_file_from_buffer: a stream in parts, and a short stream in one PUT", upload_from_buffer),
    ("presigned PUT and GET URLs work with a plain HTTP client; a forged or expired one is refused", presigned_urls),
    ("get_auth header signature used by a plain HTTP client", header_auth_from_sdk),
    ("wrong secret key: SignatureDoesNotMatch (put, append, initiate); unknown SecretId: InvalidAccessKeyId",
     wrong_keys_rejected),
    ("missing key: GET NoSuchKey, HEAD 404", missing_key),
    ("delete_object, then GET is NoSuchKey", delete_then_missing),
    ("download_file: one GET under PartSize; ranged GETs on 4 threads with CRC-64 and progress; a missing key",
     download_file_small_and_ranged),
    ("get_object with IfMatch / IfNoneMatch: body, 412 PreconditionFailed, 304 without a body", get_object_conditions),
    ("list_objects: prefix, delimiter and CommonPrefixes, MaxKeys pages with NextMarker, encoding-type, sizes/ETags",
     list_objects_prefix_delimiter_pages),
    ("delete_object (also of a missing key) and delete_objects: deleted keys gone from GET and the listing",
     delete_object_and_objects),
    ("copy_object: Copy keeps the source's headers, Replaced takes the request's, onto itself, missing source",
     copy_object_directives),
    ("put/get/delete_object_tagging round trip; x-cos-tagging-count; a missing key", tagging_round_trip),
    ("put_object_acl public-read then private, read back with get_object_acl", object_acl_round_trip),
    ("get_bucket_acl; put_bucket_acl public-read then private (local server only)", bucket_acl_round_trip),
    ("put_bucket_cors, get_bucket_cors, delete_bucket_cors (local server only)", bucket_cors_round_trip),
    ("get_object with response-content-type / -disposition / -cache-control / -language", get_object_response_overrides),
]
if MODE == "vhost" and LOCAL:
    CHECKS.append(("another bucket in the Host header: NoSuchBucket", wrong_bucket_in_host))

# Flows of this SDK that wait on other work; listed, not run, so they are not forgotten.
TODO = [
    "copy (multipart copy with upload_part_copy): the SDK HEADs the source at its COS hostname, never at the "
    "configured Domain/IP, so it cannot reach cos-testkit; cos-testkit's Upload Part - Copy is tested in Rust",
    "POST Object forms: this SDK has no form upload; covered by the browser SDK (cos-js-sdk-v5, CORS issue 12)",
]


def cleanup():
    for key in set(created):
        try:
            client.delete_object(Bucket=BUCKET, Key=key)
        except Exception:  # noqa: BLE001 - best effort
            pass
    try:
        r = client.list_multipart_uploads(Bucket=BUCKET, Prefix=PREFIX)
        ups = r.get("Upload", [])
        for u in ups if isinstance(ups, list) else [ups]:
            client.abort_multipart_upload(Bucket=BUCKET, Key=u["Key"], UploadId=u["UploadId"])
    except Exception:  # noqa: BLE001 - best effort
        pass


def main():
    failed = 0
    only = env.get("CONFORMANCE_ONLY", "")
    for name, fn in CHECKS:
        if only and only not in name:
            continue
        t = time.monotonic()
        try:
            fn()
            print(f"ok   {LABEL}: {name} ({time.monotonic() - t:.2f}s)", flush=True)
        except Exception as e:  # noqa: BLE001 - every failure is reported the same way
            failed += 1
            where = traceback.extract_tb(e.__traceback__)[-1]
            why = f"{type(e).__name__}: {e}".replace("\n", " ")[:400]
            print(f"FAIL {LABEL}: {name}: {why} (line {where.lineno})", flush=True)
    for t in TODO:
        print(f"todo {LABEL}: {t}")
    if not LOCAL:
        cleanup()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
