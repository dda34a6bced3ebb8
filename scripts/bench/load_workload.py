#!/usr/bin/env python3
"""Loads a slotd-workload/1 file (../shared/bench/gen_workload.py) into a running slotd over
its HTTP API: one host per workload host with its weekly hours and busy intervals, and one
event type with the workload's rules. Prints the event type id.

    load_workload.py BASE_URL API_KEY workload.json
"""
import http.client
import json
import sys
import urllib.parse

DAY_NAMES = {"mon": "monday", "tue": "tuesday", "wed": "wednesday", "thu": "thursday",
             "fri": "friday", "sat": "saturday", "sun": "sunday"}


def main():
    base, key, path = sys.argv[1:4]
    workload = json.load(open(path))
    assert workload["format"] == "slotd-workload/1", workload["format"]
    url = urllib.parse.urlparse(base)
    conn = http.client.HTTPConnection(url.hostname, url.port)
    headers = {"Authorization": f"Bearer {key}", "content-type": "application/json"}

    def post(route, body):
        conn.request("POST", route, json.dumps(body), headers)
        response = conn.getresponse()
        text = response.read()
        if response.status != 201:
            sys.exit(f"POST {route} answered {response.status}: {text.decode()}")
        return json.loads(text)

    host_ids = {}
    for host in workload["hosts"]:
        weekly = {}
        for rule in host["weekly_hours"]:
            for day in rule["days"]:
                weekly.setdefault(DAY_NAMES[day], []).append({"start": rule["start"], "end": rule["end"]})
        created = post("/v1/hosts", {"name": host["id"], "email": f"{host['id']}@example.com",
                                     "time_zone": host["time_zone"], "availability": {"weekly": weekly}})
        host_ids[host["id"]] = created["id"]
        for busy in host["busy"]:
            post(f"/v1/hosts/{created['id']}/busy", {"start": busy["start"], "end": busy["end"]})

    et = workload["event_type"]
    created = post("/v1/event-types", {
        "slug": et["id"], "title": "Workload", "duration_minutes": et["length_minutes"],
        "slot_interval_minutes": et["slot_interval_minutes"],
        "buffer_before_minutes": et["before_buffer_minutes"], "buffer_after_minutes": et["after_buffer_minutes"],
        "min_notice_minutes": et["minimum_notice_minutes"], "booking_window_days": 3650,
        "assignment": et["assignment"], "hosts": [host_ids[h] for h in et["hosts"]]})
    print(created["id"])


if __name__ == "__main__":
    main()
