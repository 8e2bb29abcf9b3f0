#!/usr/bin/env bash
# Real-client compatibility suite for s3edge.
#
# Builds ./cmd/s3edge once, makes a test CA and a certificate for 127.0.0.1,
# and runs real S3 clients against s3edge instances on free loopback ports,
# over http and over https (clients change their upload encoding with TLS):
#
#   boto3    clients/boto3_test.py: Synapse's storage provider and its
#            s3_media_upload script, exactly as they build their clients
#   awscli   aws s3 cp (also S3 to S3)/sync/ls/rm/presign, aws s3api
#   s3cmd    put/get/ls/info/del/sync (Debian package)
#   rclone   copy/ls/cat/check/delete/sync (Debian package)
#
# against two upstream setups:
#
#   embedded the default demo: `s3edge serve` with no configuration (https:
#            a configuration file holding only `tls:`)
#   moto     moto_server as a second, real S3 upstream, behind a bucket
#            mapping with a prefix and a second, read-only credential
#
# Every check prints a PASS/FAIL/SKIP line; the last line is
# "N passed, N failed"; the exit status is non-zero if anything failed.
# A missing client program is skipped with a loud message (.ci/run installs
# them all).
#
# Environment (all optional):
#   SETUPS="embedded moto"   SCHEMES="http https"   (SETUPS=direct: the
#                            clients straight against moto, to check the suite)
#   CLIENTS="boto3 awscli s3cmd rclone"
#   KEEP=1                   keep the temporary directory (logs, data dirs)
#   CLIENT_TIMEOUT=120       seconds for any one client command
#   DEADLINE=600             seconds for the whole suite: checks not started
#                            by then are reported as FAIL (not run)
#   S3EDGE_LOG_LEVEL=debug   passed to s3edge as --log-level (its log: $tmp/<setup>/stderr)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
SETUPS=${SETUPS:-embedded moto}
SCHEMES=${SCHEMES:-http https}
CLIENTS=${CLIENTS:-boto3 awscli s3cmd rclone}
T=${CLIENT_TIMEOUT:-120}   # seconds, for any one client command
DEADLINE=${DEADLINE:-600}  # seconds for the whole suite; later checks are failed unrun

tmp=$(mktemp -d "${TMPDIR:-/tmp}/s3edge-clients.XXXXXX")
results=$tmp/results
: >"$results"
mkdir -p "$tmp/logs"
pids=()

cleanup() {
	local p
	for p in "${pids[@]+"${pids[@]}"}"; do
		kill "$p" 2>/dev/null || true
	done
	for p in "${pids[@]+"${pids[@]}"}"; do
		wait "$p" 2>/dev/null || true
	done
	if [[ ${KEEP:-} == 1 ]]; then
		echo "kept $tmp"
	else
		rm -rf "$tmp"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Nothing from the caller's AWS setup may leak into the clients.
unset AWS_PROFILE AWS_DEFAULT_PROFILE AWS_SESSION_TOKEN AWS_SECURITY_TOKEN \
	AWS_REQUEST_CHECKSUM_CALCULATION AWS_RESPONSE_CHECKSUM_VALIDATION \
	AWS_ENDPOINT_URL AWS_ENDPOINT_URL_S3 AWS_DEFAULT_REGION AWS_REGION \
	AWS_CA_BUNDLE AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
: >"$tmp/aws-config"
: >"$tmp/aws-credentials"
: >"$tmp/rclone.conf"
printf '[default]\ns3 =\n    signature_version = s3v4\n' >"$tmp/aws-cli-config"
export AWS_CONFIG_FILE=$tmp/aws-config AWS_SHARED_CREDENTIALS_FILE=$tmp/aws-credentials
export AWS_EC2_METADATA_DISABLED=true RCLONE_CONFIG=$tmp/rclone.conf
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1

# ---------------------------------------------------------------- results

record() { # VERDICT TEXT...
	printf '%s %s\n' "$1" "${*:2}" | tee -a "$results"
}

nlog=0
# check NAME COMMAND...: run COMMAND (a program or a function of this file)
# in a subshell with errexit, its output to a log shown on failure.
check() {
	local name=$1 rc
	shift
	if past_deadline; then
		record FAIL "$name (not run: the suite's ${DEADLINE} s deadline has passed)"
		return
	fi
	nlog=$((nlog + 1))
	local log=$tmp/logs/$nlog.log
	set +e
	(
		set -e
		"$@"
	) >"$log" 2>&1
	rc=$?
	set -e
	if ((rc == 0)); then
		record PASS "$name"
	else
		record FAIL "$name (exit $rc)"
		tail -n 30 "$log" | sed 's/^/    | /'
	fi
}

suite_start=$SECONDS
past_deadline() { ((SECONDS - suite_start > DEADLINE)); }

skip() { # NAME REASON
	record SKIP "$1 -- $2"
}

t() { timeout -k 5 "$T" "$@"; }

# not COMMAND...: succeeds when COMMAND fails (errexit ignores a plain "!").
not() {
	if "$@"; then
		return 1
	fi
}

# expect_fail COMMAND...: succeeds when COMMAND fails (not by timeout).
expect_fail() {
	local rc=0
	"$@" || rc=$?
	if ((rc == 0)); then
		echo "expected failure, got success: $*"
		return 1
	fi
	((rc != 124 && rc != 137)) || {
		echo "timed out: $*"
		return 1
	}
}

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# ---------------------------------------------------------------- setup

if [[ $SETUPS != direct ]]; then
	echo "== building s3edge"
	(cd "$root" && timeout 600 go build -o "$tmp/s3edge" ./cmd/s3edge)
fi
bin=$tmp/s3edge

echo "== making a test CA and a certificate for 127.0.0.1"
certs=$tmp/certs
mkdir -p "$certs"
(
	cd "$certs"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
		-subj "/CN=s3edge clients test CA" -keyout ca.key -out ca.pem \
		-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-subj "/CN=127.0.0.1" -keyout server.key -out server.csr
	cat >server.ext <<-'EOF'
		basicConstraints=CA:FALSE
		keyUsage=critical,digitalSignature
		extendedKeyUsage=serverAuth
		subjectAltName=IP:127.0.0.1
		subjectKeyIdentifier=hash
		authorityKeyIdentifier=keyid
	EOF
	openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
		-extfile server.ext -out server.pem
) >"$tmp/logs/openssl.log" 2>&1 || {
	cat "$tmp/logs/openssl.log"
	exit 1
}
ca=$certs/ca.pem

# Shared payloads.
data=$tmp/payload
mkdir -p "$data/tree/sub dir/[2001:db8::1]:8448" "$data/tree/ünï"
head -c 10240 /dev/urandom >"$data/small.bin"
head -c $((12 * 1024 * 1024)) /dev/urandom >"$data/big.bin" # > 8 MiB: multipart for aws/s3cmd/rclone
head -c 3000 /dev/urandom >"$data/tree/a.bin"
head -c 70000 /dev/urandom >"$data/tree/sub dir/b c.bin"
head -c 1 /dev/urandom >"$data/tree/sub dir/[2001:db8::1]:8448/efgh"
printf 'hello\n' >"$data/tree/ünï/hé llo+plus.txt"
: >"$data/tree/empty"
ntree=$(find "$data/tree" -type f | wc -l)

# start_s3edge NAME ARGS...: starts s3edge, sets URL and, when it printed
# generated credentials, AK and SK.
start_s3edge() {
	local name=$1 i line
	shift
	local dir=$tmp/$name
	mkdir -p "$dir"
	local extra=()
	[[ -n ${S3EDGE_LOG_LEVEL:-} ]] && extra=(--log-level "$S3EDGE_LOG_LEVEL")
	"$bin" serve --listen 127.0.0.1:0 --data-dir "$dir/data" ${extra[@]+"${extra[@]}"} "$@" >"$dir/stdout" 2>"$dir/stderr" &
	local pid=$!
	pids+=("$pid")
	URL=""
	for ((i = 0; i < 150; i++)); do
		line=$(grep -h -m1 -oE 's3edge listening on https?://127\.0\.0\.1:[0-9]+' "$dir/stdout" "$dir/stderr" || true)
		if [[ -n $line ]]; then
			URL=${line##* }
			break
		fi
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.2
	done
	if [[ -z $URL ]]; then
		echo "s3edge ($name) did not start; its output:"
		sed 's/^/    | /' "$dir/stdout" "$dir/stderr" | tail -n 40
		return 1
	fi
	line=$(grep -h -m1 -oE 'export AWS_ACCESS_KEY_ID=[^ ]+ AWS_SECRET_ACCESS_KEY=[^ ]+' "$dir/stdout" || true)
	if [[ -n $line ]]; then
		AK=${line#export AWS_ACCESS_KEY_ID=}
		AK=${AK%% *}
		SK=${line##*AWS_SECRET_ACCESS_KEY=}
		AK=${AK//[\"\']/}
		SK=${SK//[\"\']/}
	fi
	echo "s3edge ($name) at $URL"
}

MOTO_URL=""
start_moto() {
	local port i cmd
	if command -v moto_server >/dev/null 2>&1; then
		cmd=(moto_server)
	elif python3 -c 'import moto.server' 2>/dev/null; then
		cmd=(python3 -m moto.server)
	else
		return 1
	fi
	port=$(free_port)
	"${cmd[@]}" -H 127.0.0.1 -p "$port" >"$tmp/logs/moto.log" 2>&1 &
	pids+=("$!")
	for ((i = 0; i < 150; i++)); do
		if curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$port/"; then
			MOTO_URL=http://127.0.0.1:$port
			echo "moto at $MOTO_URL"
			return 0
		fi
		sleep 0.2
	done
	echo "moto_server did not start:"
	tail -n 20 "$tmp/logs/moto.log"
	return 1
}

moto_create_bucket() { # BUCKET
	t python3 - "$MOTO_URL" "$1" <<-'EOF'
		import sys, boto3
		c = boto3.client("s3", endpoint_url=sys.argv[1], aws_access_key_id="upstream",
		                 aws_secret_access_key="upstream-secret", region_name="us-east-1")
		c.create_bucket(Bucket=sys.argv[2])
	EOF
}

# ---------------------------------------------------------------- clients
# Each client reads: LABEL, URL, SCHEME, AK, SK, SSEC, RAK/RSK (restricted
# credential, may be empty), UPSTREAM_* (may be empty), WORK.

run_boto3() {
	local before rc=0 log
	if past_deadline; then
		record FAIL "boto3 [$LABEL] (not run: the suite's ${DEADLINE} s deadline has passed)"
		return
	fi
	nlog=$((nlog + 1))
	log=$tmp/logs/$nlog.log
	before=$(grep -c '^FAIL' "$results" || true)
	local ca_env=()
	[[ $SCHEME == https ]] && ca_env=(AWS_CA_BUNDLE="$ca")
	set +e
	env ${ca_env[@]+"${ca_env[@]}"} S3EDGE_ENDPOINT="$URL" S3EDGE_LABEL="$LABEL" S3EDGE_RESULTS="$results" S3EDGE_BUCKET=media \
		S3EDGE_SSEC="$SSEC" S3EDGE_RESTRICTED_KEY="$RAK" S3EDGE_RESTRICTED_SECRET="$RSK" \
		S3EDGE_RESTRICTED_PREFIX=local_thumbnails/ S3EDGE_UPSTREAM_ENDPOINT="$UPSTREAM_ENDPOINT" \
		S3EDGE_UPSTREAM_BUCKET="$UPSTREAM_BUCKET" S3EDGE_UPSTREAM_PREFIX="$UPSTREAM_PREFIX" \
		S3EDGE_UPSTREAM_KIND="$UPSTREAM_KIND" \
		AWS_ACCESS_KEY_ID="$AK" AWS_SECRET_ACCESS_KEY="$SK" \
		timeout -k 10 300 python3 "$here/boto3_test.py" 2>"$log"
	rc=$?
	set -e
	if ((rc != 0)); then
		if ((rc == 124 || rc == 137)); then
			record FAIL "boto3 [$LABEL] suite timed out after 300 s"
		elif (($(grep -c '^FAIL' "$results" || true) == before)); then
			record FAIL "boto3 [$LABEL] exited $rc without a failing test (crash?)"
		fi
		echo "    boto3 [$LABEL] unittest output (tracebacks):"
		grep -v '^\(PASS\|SKIP\) ' "$log" | tail -n 150 | sed 's/^/    | /'
	fi
}

# awscli v1 presigns with Signature V2 unless told otherwise: awsc signs
# everything with V4 as configured deployments do, aws_presign_v2 checks
# the default.
awsc() {
	AWS_CONFIG_FILE=$tmp/aws-cli-config t aws --endpoint-url "$URL" --region us-east-1 ${CA_ARGS[@]+"${CA_ARGS[@]}"} "$@"
}

aws_cp_small() {
	awsc s3 cp "$data/small.bin" "s3://media/$P/small.bin"
	awsc s3 cp "s3://media/$P/small.bin" "$WORK/small.bin"
	cmp "$data/small.bin" "$WORK/small.bin"
}

aws_cp_big() {
	awsc s3 cp "$data/big.bin" "s3://media/$P/big file [1].bin"
	awsc s3 cp "s3://media/$P/big file [1].bin" "$WORK/big.bin"
	cmp "$data/big.bin" "$WORK/big.bin"
	# For the log: s3transfer uploaded it in two parts (moto, like AWS S3,
	# then gives an ETag ending in -2; the embedded store does not).
	awsc s3api head-object --bucket media --key "$P/big file [1].bin" --query ETag --output text | tee "$WORK/etag"
}

# Above the 8 MiB threshold, s3 cp between two S3 keys is a multipart copy:
# UploadPartCopy with x-amz-copy-source-range per part.
aws_cp_s3_to_s3() {
	awsc s3 cp "s3://media/$P/big file [1].bin" "s3://media/$P/copies/big copy.bin"
	awsc s3 cp "s3://media/$P/copies/big copy.bin" "$WORK/big-copy.bin"
	cmp "$data/big.bin" "$WORK/big-copy.bin"
}

aws_ls() {
	awsc s3 ls --recursive "s3://media/$P/" | tee "$WORK/ls"
	grep -qE " 10240 $P/small.bin\$" "$WORK/ls"
	grep -qE " 12582912 $P/big file \[1\]\.bin\$" "$WORK/ls"
	awsc s3 ls "s3://media/$P/" | tee "$WORK/ls1"
	grep -q "small.bin" "$WORK/ls1"
	awsc s3 ls | tee "$WORK/buckets"
	grep -q " media\$" "$WORK/buckets"
}

aws_sync() {
	awsc s3 sync "$data/tree" "s3://media/$P/tree/"
	awsc s3 sync "s3://media/$P/tree/" "$WORK/tree-back"
	diff -r "$data/tree" "$WORK/tree-back"
	# Nothing changed: a second sync uploads nothing.
	awsc s3 sync "$data/tree" "s3://media/$P/tree/" | tee "$WORK/sync2"
	[[ ! -s $WORK/sync2 ]]
}

aws_s3api() {
	local key="$P/api/[::1]:8448/ünï cødé"
	awsc s3api put-object --bucket media --key "$key" --body "$data/small.bin" \
		--content-type image/png --metadata origin=awscli --storage-class STANDARD
	awsc s3api head-object --bucket media --key "$key" --output json | tee "$WORK/head.json"
	python3 - "$WORK/head.json" <<-'EOF'
		import json, sys
		h = json.load(open(sys.argv[1]))
		assert h["ContentLength"] == 10240, h
		assert h["ContentType"] == "image/png", h
		assert h["Metadata"] == {"origin": "awscli"}, h
	EOF
	awsc s3api get-object --bucket media --key "$key" "$WORK/api.bin" >/dev/null
	cmp "$data/small.bin" "$WORK/api.bin"
	awsc s3api get-object --bucket media --key "$key" --range bytes=10-19 "$WORK/range.bin" >/dev/null
	cmp <(head -c 20 "$data/small.bin" | tail -c 10) "$WORK/range.bin"
	# Missing key: HEAD gives 404 (not 403).
	expect_fail awsc s3api head-object --bucket media --key "$P/missing" 2>"$WORK/missing.err"
	grep -q "(404)" "$WORK/missing.err"
	expect_fail awsc s3api get-object --bucket media --key "$P/missing" "$WORK/x" 2>"$WORK/missing2.err"
	grep -q "NoSuchKey" "$WORK/missing2.err"
}

aws_list_v2() {
	# --page-size 2: several ListObjectsV2 calls with continuation tokens,
	# merged by the CLI.
	awsc s3api list-objects-v2 --bucket media --prefix "$P/tree/" --page-size 2 --output json >"$WORK/all.json"
	python3 - "$WORK/all.json" "$ntree" <<-'EOF'
		import json, sys
		r = json.load(open(sys.argv[1]))
		keys = [o["Key"] for o in r.get("Contents", [])]
		print(len(keys), "keys:", keys)
		assert len(keys) == int(sys.argv[2]), f"want {sys.argv[2]}"
		assert keys == sorted(keys, key=lambda k: k.encode()), "not in S3 (UTF-8 byte) order"
	EOF
	awsc s3api list-objects-v2 --bucket media --prefix "$P/tree/" --delimiter / --output json | tee "$WORK/delim.json"
	python3 - "$WORK/delim.json" "$P/tree/" <<-'EOF'
		import json, sys
		r, base = json.load(open(sys.argv[1])), sys.argv[2]
		got = sorted(p["Prefix"] for p in r["CommonPrefixes"])
		assert got == sorted([base + "sub dir/", base + "ünï/"]), got
		keys = sorted(o["Key"] for o in r["Contents"])
		assert keys == [base + "a.bin", base + "empty"], keys
	EOF
}

aws_presign() {
	local url
	url=$(awsc s3 presign "s3://media/$P/small.bin" --expires-in 300)
	echo "$url"
	t curl -fsS ${CURL_CA[@]+"${CURL_CA[@]}"} -o "$WORK/presigned.bin" "$url"
	cmp "$data/small.bin" "$WORK/presigned.bin"
}

aws_presign_v2() {
	local url
	url=$(AWS_CONFIG_FILE=/dev/null t aws --endpoint-url "$URL" --region us-east-1 ${CA_ARGS[@]+"${CA_ARGS[@]}"} \
		s3 presign "s3://media/$P/small.bin" --expires-in 300)
	echo "$url"
	[[ $url == *AWSAccessKeyId=* ]]
	t curl -fsS ${CURL_CA[@]+"${CURL_CA[@]}"} -o "$WORK/presigned2.bin" "$url"
	cmp "$data/small.bin" "$WORK/presigned2.bin"
	# A changed key under the same signature is refused.
	expect_fail curl -fsS ${CURL_CA[@]+"${CURL_CA[@]}"} -o /dev/null "${url/small.bin/small.bim}"
}

aws_rm() {
	awsc s3 rm "s3://media/$P/small.bin"
	expect_fail awsc s3api head-object --bucket media --key "$P/small.bin"
	awsc s3 rm --recursive "s3://media/$P/"
	local n
	n=$(awsc s3api list-objects-v2 --bucket media --prefix "$P/" --query 'length(Contents || `[]`)' --output text)
	echo "left: $n"
	[[ $n == 0 ]]
}

run_awscli() {
	if ! command -v aws >/dev/null 2>&1; then
		skip "awscli [$LABEL]" "!!! aws CLI NOT INSTALLED: NOT TESTED !!!"
		return
	fi
	P="cli-$RANDOM$RANDOM"
	CA_ARGS=()
	CURL_CA=()
	if [[ $SCHEME == https ]]; then
		CA_ARGS=(--ca-bundle "$ca")
		CURL_CA=(--cacert "$ca")
	fi
	local n=awscli
	check "$n [$LABEL] s3 cp small file up and down" aws_cp_small
	check "$n [$LABEL] s3 cp 12 MiB file up (multipart) and down" aws_cp_big
	check "$n [$LABEL] s3 cp 12 MiB from S3 to S3 (UploadPartCopy)" aws_cp_s3_to_s3
	check "$n [$LABEL] s3 ls, s3 ls --recursive" aws_ls
	check "$n [$LABEL] s3 sync up and back, then no-op sync" aws_sync
	check "$n [$LABEL] s3api put-object/head-object/get-object, missing key" aws_s3api
	check "$n [$LABEL] s3api list-objects-v2 pagination and delimiter" aws_list_v2
	check "$n [$LABEL] s3 presign fetched with curl" aws_presign
	check "$n [$LABEL] s3 presign with the default Signature V2" aws_presign_v2
	check "$n [$LABEL] s3 rm, s3 rm --recursive" aws_rm
}

s3c() { t s3cmd -c "$WORK/s3cfg" "$@"; }

s3cmd_put_get() {
	s3c put "$data/small.bin" "s3://media/$P/small.bin"
	s3c get --force "s3://media/$P/small.bin" "$WORK/small.bin"
	cmp "$data/small.bin" "$WORK/small.bin"
}

s3cmd_big() {
	s3c put --multipart-chunk-size-mb=5 "$data/big.bin" "s3://media/$P/big.bin"
	s3c get --force "s3://media/$P/big.bin" "$WORK/big.bin"
	cmp "$data/big.bin" "$WORK/big.bin"
}

s3cmd_ls() {
	s3c ls "s3://media/$P/" | tee "$WORK/ls"
	grep -q "s3://media/$P/small.bin\$" "$WORK/ls"
	s3c ls | tee "$WORK/buckets"
	grep -q "s3://media\$" "$WORK/buckets"
}

s3cmd_info() {
	s3c info "s3://media/$P/small.bin" | tee "$WORK/info"
	grep -qE "File size: *10240" "$WORK/info"
	grep -qiE "MD5 sum: *$(md5sum "$data/small.bin" | cut -d' ' -f1)" "$WORK/info"
	s3c info s3://media | tee "$WORK/binfo"
}

s3cmd_sync() {
	s3c sync "$data/tree/" "s3://media/$P/tree/"
	mkdir -p "$WORK/tree-back"
	s3c sync "s3://media/$P/tree/" "$WORK/tree-back/"
	diff -r "$data/tree" "$WORK/tree-back"
}

# s3cmd signed with Signature V2 (signature_v2 = True), and its signurl,
# which presigns with V2 whatever the setting.
s3cmd_v2() {
	sed 's/^signature_v2 = False/signature_v2 = True/' "$WORK/s3cfg" >"$WORK/s3cfg-v2"
	t s3cmd -c "$WORK/s3cfg-v2" put "$data/small.bin" "s3://media/$P/v2 small.bin"
	t s3cmd -c "$WORK/s3cfg-v2" get --force "s3://media/$P/v2 small.bin" "$WORK/v2.bin"
	cmp "$data/small.bin" "$WORK/v2.bin"
	t s3cmd -c "$WORK/s3cfg-v2" ls "s3://media/$P/" | grep -q "v2 small.bin"
	local url
	url=$(s3c signurl "s3://media/$P/v2 small.bin" +300)
	url=$SCHEME://${url#*://} # signurl writes http:// whatever use_https says
	echo "$url"
	local cacert=()
	[[ $SCHEME != https ]] || cacert=(--cacert "$ca")
	t curl -fsS ${cacert[@]+"${cacert[@]}"} -o "$WORK/v2s.bin" "$url"
	cmp "$data/small.bin" "$WORK/v2s.bin"
	t s3cmd -c "$WORK/s3cfg-v2" del "s3://media/$P/v2 small.bin"
}

s3cmd_del() {
	s3c del "s3://media/$P/small.bin"
	s3c ls "s3://media/$P/" | tee "$WORK/ls2"
	not grep -q "small.bin" "$WORK/ls2"
	s3c del --recursive --force "s3://media/$P/"
	s3c ls --recursive "s3://media/$P/" | tee "$WORK/ls3"
	[[ ! -s $WORK/ls3 ]]
}

run_s3cmd() {
	if ! command -v s3cmd >/dev/null 2>&1; then
		skip "s3cmd [$LABEL]" "!!! s3cmd NOT INSTALLED (apt-get install s3cmd): NOT TESTED !!!"
		return
	fi
	P="s3cmd-$RANDOM$RANDOM"
	local hostport=${URL#*://}
	cat >"$WORK/s3cfg" <<-EOF
		[default]
		access_key = $AK
		secret_key = $SK
		host_base = $hostport
		host_bucket = $hostport
		bucket_location = us-east-1
		use_https = $([[ $SCHEME == https ]] && echo True || echo False)
		check_ssl_certificate = True
		check_ssl_hostname = True
		ca_certs_file = $([[ $SCHEME == https ]] && echo "$ca")
		signature_v2 = False
		progress_meter = False
		multipart_chunk_size_mb = 5
	EOF
	local n=s3cmd
	skip "$n [$LABEL] mb" "bucket media exists and s3edge does not create buckets"
	check "$n [$LABEL] put and get" s3cmd_put_get
	check "$n [$LABEL] put 12 MiB (multipart, 5 MiB chunks) and get" s3cmd_big
	check "$n [$LABEL] ls" s3cmd_ls
	check "$n [$LABEL] info (object and bucket)" s3cmd_info
	check "$n [$LABEL] sync up and back" s3cmd_sync
	check "$n [$LABEL] Signature V2 put/get/ls/del, signurl" s3cmd_v2
	check "$n [$LABEL] del, del --recursive" s3cmd_del
}

rc_() { t rclone --retries 1 --low-level-retries 2 ${RCLONE_CA[@]+"${RCLONE_CA[@]}"} "$@"; }

rclone_copy_ls_cat() {
	rc_ copy "$data/tree" "s3e:media/$P/tree"
	rc_ ls "s3e:media/$P/tree" | tee "$WORK/ls"
	[[ $(wc -l <"$WORK/ls") == "$ntree" ]]
	rc_ cat "s3e:media/$P/tree/sub dir/b c.bin" >"$WORK/cat.bin"
	cmp "$data/tree/sub dir/b c.bin" "$WORK/cat.bin"
}

rclone_check() {
	rc_ check "$data/tree" "s3e:media/$P/tree"
}

rclone_big() {
	local nohead=()
	# moto answers a multipart upload with "x-amz-version-id: null" and then
	# rejects rclone's HEAD ?versionId=null with 400; AWS S3 does neither.
	[[ $UPSTREAM_KIND == moto ]] && nohead=(--s3-no-head)
	rc_ copyto ${nohead[@]+"${nohead[@]}"} --s3-upload-cutoff 5M --s3-chunk-size 5M "$data/big.bin" "s3e:media/$P/big.bin"
	rc_ cat "s3e:media/$P/big.bin" | cmp "$data/big.bin" -
	rc_ md5sum "s3e:media/$P/big.bin" | tee "$WORK/md5"
	[[ $(cut -d' ' -f1 "$WORK/md5") == $(md5sum "$data/big.bin" | cut -d' ' -f1) ]]
}

rclone_sync() {
	rm -rf "$WORK/tree2"
	cp -r "$data/tree" "$WORK/tree2"
	rm "$WORK/tree2/a.bin"
	head -c 5000 /dev/urandom >"$WORK/tree2/new file.bin"
	rc_ sync "$WORK/tree2" "s3e:media/$P/tree"
	rc_ check "$WORK/tree2" "s3e:media/$P/tree"
	rc_ lsf -R "s3e:media/$P/tree" | tee "$WORK/lsf"
	not grep -qx "a.bin" "$WORK/lsf"
}

rclone_delete() {
	rc_ delete "s3e:media/$P"
	rc_ lsf -R "s3e:media/$P" | tee "$WORK/lsf2"
	[[ ! -s $WORK/lsf2 ]]
}

run_rclone() {
	if ! command -v rclone >/dev/null 2>&1; then
		skip "rclone [$LABEL]" "!!! rclone NOT INSTALLED (apt-get install rclone): NOT TESTED !!!"
		return
	fi
	P="rclone-$RANDOM$RANDOM"
	RCLONE_CA=()
	[[ $SCHEME == https ]] && RCLONE_CA=(--ca-cert "$ca")
	export RCLONE_CONFIG_S3E_TYPE=s3 RCLONE_CONFIG_S3E_PROVIDER=Other \
		RCLONE_CONFIG_S3E_ENDPOINT="$URL" RCLONE_CONFIG_S3E_REGION=us-east-1 \
		RCLONE_CONFIG_S3E_ACCESS_KEY_ID="$AK" RCLONE_CONFIG_S3E_SECRET_ACCESS_KEY="$SK" \
		RCLONE_CONFIG_S3E_FORCE_PATH_STYLE=true
	local n=rclone
	check "$n [$LABEL] copy, ls, cat" rclone_copy_ls_cat
	check "$n [$LABEL] check (sizes and MD5)" rclone_check
	check "$n [$LABEL] copyto 12 MiB (multipart, 5 MiB chunks), cat, md5sum" rclone_big
	check "$n [$LABEL] sync (adds and deletes)" rclone_sync
	check "$n [$LABEL] delete" rclone_delete
}

run_clients() {
	local c
	WORK=$tmp/work-${LABEL//\//-}
	mkdir -p "$WORK"
	export AWS_ACCESS_KEY_ID=$AK AWS_SECRET_ACCESS_KEY=$SK
	for c in $CLIENTS; do
		echo "-- $c [$LABEL]"
		local start=$SECONDS
		"run_$c"
		echo "-- $c [$LABEL] took $((SECONDS - start)) s"
	done
}

# ---------------------------------------------------------------- setups

setup_embedded() { # SCHEME
	SCHEME=$1 LABEL="embedded/$1"
	AK="" SK="" RAK="" RSK="" UPSTREAM_ENDPOINT="" UPSTREAM_BUCKET="" UPSTREAM_PREFIX="" UPSTREAM_KIND=embedded
	# gofakes3 ignores the SSE-C headers: they pass through and bytes round-trip.
	SSEC=1
	local args=()
	if [[ $1 == https ]]; then
		# Only tls: is configured, so s3edge still runs its embedded demo.
		cat >"$tmp/embedded-https.yaml" <<-EOF
			tls:
			  cert_file: $certs/server.pem
			  key_file: $certs/server.key
		EOF
		args=(--config "$tmp/embedded-https.yaml")
	fi
	if ! start_s3edge "embedded-$1" ${args[@]+"${args[@]}"}; then
		record FAIL "s3edge [$LABEL] did not start"
		return
	fi
	if [[ -z $AK || -z $SK ]]; then
		record FAIL "s3edge [$LABEL] printed no 'export AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=...' line"
		return
	fi
	[[ $URL == "$1://"* ]] || record FAIL "s3edge [$LABEL] listens on $URL, want $1"
	run_clients
}

setup_moto() { # SCHEME
	SCHEME=$1 LABEL="moto/$1"
	if [[ -z $MOTO_URL ]]; then
		if ! start_moto; then
			skip "moto [$LABEL]" "!!! moto NOT INSTALLED or did not start: the S3-upstream setup is NOT TESTED !!!"
			return
		fi
		if ! moto_create_bucket upstream-media >"$tmp/logs/moto-bucket.log" 2>&1; then
			cat "$tmp/logs/moto-bucket.log"
			record FAIL "moto: could not create the upstream bucket"
			MOTO_URL=""
			return
		fi
	fi
	AK=synapse-$1
	SK=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')
	RAK=thumbs-$1
	RSK=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')
	UPSTREAM_ENDPOINT=$MOTO_URL UPSTREAM_BUCKET=upstream-media UPSTREAM_PREFIX="hs1-$1/" UPSTREAM_KIND=moto
	# moto accepts SSE-C headers (it does not encrypt or enforce the key).
	SSEC=1
	local cfg=$tmp/moto-$1.yaml tls=""
	if [[ $1 == https ]]; then
		tls="tls: {cert_file: $certs/server.pem, key_file: $certs/server.key}"
	fi
	# The upstream keys come from the environment: ${VAR} expansion.
	cat >"$cfg" <<-EOF
		listen: 127.0.0.1:0
		$tls
		upstreams:
		  moto:
		    type: s3
		    endpoint: $MOTO_URL
		    region: us-east-1
		    access_key_id: \${S3EDGE_TEST_MOTO_KEY}
		    secret_access_key: \${S3EDGE_TEST_MOTO_SECRET}
		    path_style: true
		buckets:
		  media:
		    upstream: moto
		    bucket: upstream-media
		    prefix: $UPSTREAM_PREFIX
		    cache: {sse_c: true}   # the SSE-C checks go through the cache here
		credentials:
		  - access_key_id: $AK
		    secret_access_key: $SK
		    grants:
		      - {bucket: media, prefix: "", actions: [read, write, list, delete]}
		  - access_key_id: $RAK
		    secret_access_key: $RSK
		    grants:
		      - {bucket: media, prefix: local_thumbnails/, actions: [read, list]}
	EOF
	export S3EDGE_TEST_MOTO_KEY=upstream S3EDGE_TEST_MOTO_SECRET=upstream-secret
	if ! start_s3edge "moto-$1" --config "$cfg"; then
		record FAIL "s3edge [$LABEL] did not start"
		return
	fi
	[[ $URL == "$1://"* ]] || record FAIL "s3edge [$LABEL] listens on $URL, want $1"
	run_clients
}

# Not a default setup: the clients straight against moto, no s3edge, to
# check the suite itself (moto does not verify signatures: the auth checks
# fail there by design).
setup_direct() { # SCHEME
	[[ $1 == http ]] || return 0
	SCHEME=http LABEL="direct-moto/http"
	if [[ -z $MOTO_URL ]]; then
		start_moto || return 1
	fi
	moto_create_bucket media >/dev/null 2>&1 || true
	URL=$MOTO_URL AK=upstream SK=upstream-secret RAK="" RSK="" SSEC=1
	UPSTREAM_ENDPOINT="" UPSTREAM_BUCKET="" UPSTREAM_PREFIX="" UPSTREAM_KIND=moto
	run_clients
}

for setup in $SETUPS; do
	for scheme in $SCHEMES; do
		echo "== $setup over $scheme"
		start=$SECONDS
		"setup_$setup" "$scheme"
		echo "== $setup over $scheme took $((SECONDS - start)) s"
	done
done

passed=$(grep -c '^PASS' "$results" || true)
failed=$(grep -c '^FAIL' "$results" || true)
skipped=$(grep -c '^SKIP' "$results" || true)
echo
echo "== summary ($((SECONDS - suite_start)) s)"
grep -E '^(FAIL|SKIP)' "$results" || true
echo "$skipped skipped"
echo "$passed passed, $failed failed"
((failed == 0 && passed > 0))
