#!/usr/bin/env bash
# Device groups and group jobs: `tessera group create|add|remove|list|show|delete` on the
# instance directory and through a running `tessera serve` (--server), the REST routes under
# /api/v1/tenants/{t}/groups, audit entries, and `tessera job create --group` / POST .../jobs with
# "group", which queues one job per member in one transaction; an unknown or empty group, an
# unregistered device and a member added twice are refused and change nothing. A device in two
# groups gets a job from each.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/serve.sh"

[ -x "$TESSERA" ] || fail "no tessera at $TESSERA (set TS_BUILD_DIR)"
unset TESSERA_OPERATOR TESSERA_SERVER TESSERA_TOKEN TESSERA_CACERT
D=$TS_TEST_TMP/ca
W=$TS_TEST_TMP/work
mkdir -p "$W"
export TESSERA_DIR=$D

serve_init "$D"
serve_start "$D"
R=(--server "$SERVE_URL" --token "$ADMIN_TOKEN" --cacert "$D/root.pem")
T=/api/v1/tenants/default

# api METHOD PATH [BODY]: with the admin token; sets STATUS and BODY.
api() {
    local data=()
    [ $# -lt 3 ] || data=(-H 'Content-Type: application/json' --data "$3")
    STATUS=$(curl -sS -o "$W/api.body" -w '%{http_code}' --cacert "$D/root.pem" -X "$1" \
        -H "Authorization: Bearer $ADMIN_TOKEN" "${data[@]}" "$SERVE_URL$2")
    BODY=$(cat "$W/api.body")
}
json() {
    python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(eval(sys.argv[2]))' "$BODY" "$1"
}
jobs_count() {
    "$TESSERA" job list | wc -l
}

for d in dev-g1 dev-g2 dev-g3; do
    run_ok "register $d" "$TESSERA" device register "$d"
done

# --- local CLI ------------------------------------------------------------------------------------
run_ok "group create" "$TESSERA" group create lot-1
assert_eq "$OUT" "group lot-1 created in tenant default" "group create says so"
expect_status 1 "group create: the name is taken" "$TESSERA" group create lot-1
assert_match "$ERR" "has a group 'lot-1' already" "...saying so"
expect_status 2 "group create: a bad name" "$TESSERA" group create 'bad name'
run_ok "group add two devices" "$TESSERA" group add lot-1 --device dev-g1 --device dev-g2
assert_eq "$OUT" "group lot-1: 2 device(s) added, 2 member(s)" "group add reports the count"
expect_status 1 "group add: an unregistered device" "$TESSERA" group add lot-1 \
    --device dev-g3 --device dev-nobody
assert_match "$ERR" "device dev-nobody is not registered" "...naming it"
expect_status 1 "group add: a member twice" "$TESSERA" group add lot-1 --device dev-g3 \
    --device dev-g1
assert_match "$ERR" "dev-g1 is in group lot-1 already" "...naming it"
run_ok "group show" "$TESSERA" group show lot-1
assert_match "$OUT" '^members: +2$' "the refused adds added nothing (not even dev-g3)"
assert_match "$OUT" '^  dev-g1	' "dev-g1 is a member"
assert_no_match "$OUT" 'dev-g3' "dev-g3 is not"

run_ok "a second group" "$TESSERA" group create lot-2
run_ok "dev-g2 in two groups" "$TESSERA" group add lot-2 --device dev-g2 --device dev-g3
run_ok "group list" "$TESSERA" group list
assert_match "$OUT" '^lot-1	2	' "lot-1 with 2 members"
assert_match "$OUT" '^lot-2	2	' "lot-2 with 2 members"

# --- group jobs -----------------------------------------------------------------------------------
run_ok "an empty group" "$TESSERA" group create empty
before=$(jobs_count)
expect_status 1 "job create --group of an empty group" "$TESSERA" job create --group empty \
    --reenroll
assert_match "$ERR" "group 'empty' has no devices" "...saying so"
expect_status 1 "job create --group of an unknown group" "$TESSERA" job create --group nosuch \
    --reenroll
assert_match "$ERR" "has no group 'nosuch'" "...saying so"
expect_status 1 "job create --group with a bad entry" "$TESSERA" job create --group lot-1 \
    --set Bad=1
assert_eq "$(jobs_count)" "$before" "the refused group jobs queued nothing"
expect_status 2 "job create with --device and --group" "$TESSERA" job create --group lot-1 \
    --device dev-g1 --reenroll

run_ok "job create --group" "$TESSERA" job create --group lot-1 --set mqtt.host=b.example
assert_match "$(head -n 1 <<<"$OUT")" '^group lot-1: 2 job\(s\) queued$' "reports how many"
assert_match "$OUT" $'\n[0-9]+\tdev-g1\n[0-9]+\tdev-g2$' "one job per member"
J1=$(awk -F'\t' '$2 == "dev-g1" {print $1}' <<<"$OUT")
assert_eq "$(jobs_count)" "$((before + 2))" "two jobs more"
run_ok "the member's job" "$TESSERA" job show --id "$J1"
assert_match "$OUT" 'dev-g1' "the job is dev-g1's"
assert_match "$OUT" 'DS_PUT	mqtt.host' "with the set request"
run_ok "job list --device dev-g2" "$TESSERA" job list --device dev-g2
assert_match "$OUT" $'\tdev-g2\tset\tpending\t' "dev-g2 has its own pending job"
run_ok "a rekey for the group" "$TESSERA" job create --group lot-1 --reenroll --rekey
assert_match "$(head -n 1 <<<"$OUT")" '^group lot-1: 2 job\(s\) queued$' "...for each member"
run_ok "job list after the group rekey" "$TESSERA" job list
assert_eq "$(grep -Ec $'\tdev-g[12]\treenroll \\(rekey\\)\tpending\t' <<<"$OUT")" 2 \
    "each member has a pending rekey job"
run_ok "job create --group through the service" "$TESSERA" job create --group lot-1 \
    --set mqtt.port=8884 "${R[@]}"
assert_match "$OUT" $'^group lot-1: 2 job\\(s\\) queued\n[0-9]+\tdev-g1\n[0-9]+\tdev-g2$' \
    "through the service: the same report, one job per member"
J2=$(awk -F'\t' '$2 == "dev-g2" {print $1}' <<<"$OUT")
run_ok "its job for dev-g2" "$TESSERA" job show --id "$J2"
assert_match "$OUT" 'DS_PUT	mqtt.port' "...with the set request"
expect_status 1 "job create --group through the service of an unknown group" "$TESSERA" job create \
    --group nosuch --reenroll "${R[@]}"
assert_match "$ERR" 'nosuch' "...naming it"

run_ok "audit list" "$TESSERA" audit list
for a in group.create group.add job.create; do
    assert_match "$OUT" "$a" "audited: $a"
done

# --- REST -----------------------------------------------------------------------------------------
api GET "$T/groups"
assert_eq "$STATUS" 200 "GET groups"
assert_eq "$(json '[(g["name"], g["members"]) for g in d["items"]]')" \
    "[('empty', 0), ('lot-1', 2), ('lot-2', 2)]" "the groups with their member counts"
api POST "$T/groups" '{"name": "rest-1"}'
assert_eq "$STATUS" 201 "POST groups"
api POST "$T/groups" '{"name": "rest-1"}'
assert_eq "$STATUS" 409 "POST groups: the name is taken"
api POST "$T/groups" '{"name": "x", "extra": 1}'
assert_eq "$STATUS" 400 "POST groups: an unknown member"
api POST "$T/groups/rest-1/members" '{"devices": ["dev-g1", "dev-g3"]}'
assert_eq "$STATUS" 200 "POST members"
assert_eq "$(json '[m["uid"] for m in d["devices"]]')" "['dev-g1', 'dev-g3']" "the members"
api POST "$T/groups/rest-1/members" '{"devices": ["dev-g2", "dev-ghost"]}'
assert_eq "$STATUS" 404 "POST members: an unregistered device"
api GET "$T/groups/rest-1"
assert_eq "$(json 'd["members"]')" 2 "...and nothing added"
api DELETE "$T/groups/rest-1/members/dev-g3"
assert_eq "$STATUS" 200 "DELETE a member"
assert_eq "$(json 'd["members"]')" 1 "one member left"
api DELETE "$T/groups/rest-1/members/dev-g3"
assert_eq "$STATUS" 404 "DELETE a member twice"
before=$(jobs_count)
api POST "$T/jobs" '{"group": "rest-1", "reenroll": true}'
assert_eq "$STATUS" 201 "POST jobs with a group"
assert_eq "$(json 'd["count"]')" 1 "one job"
assert_eq "$(json 'd["jobs"][0]["device"]+" "+d["jobs"][0]["kind"]')" "dev-g1 reenroll" \
    "...for the member"
api POST "$T/jobs" '{"group": "empty", "reenroll": true}'
assert_eq "$STATUS" 409 "POST jobs for an empty group"
api POST "$T/jobs" '{"group": "nosuch", "reenroll": true}'
assert_eq "$STATUS" 404 "POST jobs for an unknown group"
api POST "$T/jobs" '{"group": "rest-1", "device": "dev-g1", "reenroll": true}'
assert_eq "$STATUS" 400 "POST jobs with both a device and a group"
api POST "$T/jobs" '{"group": "rest-1", "reenroll": true, "rekey": true}'
assert_eq "$STATUS" 201 "POST a rekey job with a group"
assert_eq "$(json 'd["jobs"][0]["kind"], d["jobs"][0]["rekey"]')" "('reenroll', True)" \
    "...marked rekey"
assert_eq "$(jobs_count)" "$((before + 2))" "only the accepted group jobs were queued"
api DELETE "$T/groups/rest-1"
assert_eq "$STATUS" 200 "DELETE a group"
api GET "$T/groups/rest-1"
assert_eq "$STATUS" 404 "the group is gone"

# --- remote CLI -----------------------------------------------------------------------------------
run_ok "group create (remote)" "$TESSERA" group create remote-1 "${R[@]}"
assert_eq "$OUT" "group remote-1 created in tenant default" "remote create"
run_ok "group add (remote)" "$TESSERA" group add remote-1 --device dev-g2 --device dev-g3 \
    "${R[@]}"
assert_eq "$OUT" "group remote-1: 2 device(s) added, 2 member(s)" "remote add"
run_ok "group remove (remote)" "$TESSERA" group remove remote-1 --device dev-g3 "${R[@]}"
assert_eq "$OUT" "group remote-1: 1 device(s) removed, 1 member(s)" "remote remove"
run_ok "group list (remote)" "$TESSERA" group list "${R[@]}"
assert_match "$OUT" '^remote-1	1	' "remote list"
run_ok "group show (remote)" "$TESSERA" group show remote-1 "${R[@]}"
assert_match "$OUT" '^members: +1$' "remote show: one member"
assert_match "$OUT" '^  dev-g2	' "...dev-g2"
expect_status 1 "group add (remote): an unregistered device" "$TESSERA" group add remote-1 \
    --device dev-ghost "${R[@]}"
expect_status 1 "group remove (remote): one of two is not a member" "$TESSERA" group remove \
    remote-1 --device dev-g2 --device dev-g3 "${R[@]}"
assert_match "$ERR" 'dev-g3' "...naming it"
run_ok "group show after the refused remove" "$TESSERA" group show remote-1
assert_match "$OUT" '^  dev-g2	' "all or none: dev-g2 is still a member"
api POST "$T/groups/remote-1/members/remove" '{"devices": ["dev-g2", 7]}'
assert_eq "$STATUS" 400 "POST .../members/remove with a member that is not a string: 400"
api POST "$T/groups/remote-1/members/remove" '{"devices": ["dev-g2"]}'
assert_eq "$STATUS" 200 "POST .../members/remove"
assert_eq "$(json 'd["members"], d["devices"]')" "(0, [])" "...removes the member"
run_ok "group delete (remote)" "$TESSERA" group delete remote-1 "${R[@]}"
run_ok "group show after delete" "$TESSERA" group list
assert_no_match "$OUT" 'remote-1' "the group is gone"

# --- local remove and delete ----------------------------------------------------------------------
expect_status 1 "group remove: not a member" "$TESSERA" group remove lot-1 --device dev-g3
assert_match "$ERR" "dev-g3 is not in group lot-1" "...naming it"
run_ok "group remove" "$TESSERA" group remove lot-1 --device dev-g1
run_ok "group delete" "$TESSERA" group delete lot-2
expect_status 1 "group delete of an unknown group" "$TESSERA" group delete lot-2
run_ok "group list" "$TESSERA" group list
assert_no_match "$OUT" 'lot-2' "lot-2 is gone"
run_ok "device show: dev-g2 is still registered" "$TESSERA" device show dev-g2

serve_stop
assert_eq "$SERVE_STATUS" 0 "SIGTERM stops the service cleanly"
assert_no_match "$(cat "$SERVE_LOG")" 'Sanitizer|runtime error' "no sanitizer report from the service"
finish
