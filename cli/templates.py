"""The commented config file `fit init` writes (every key is documented in the README)."""

CONFIG_TEMPLATE = """\
# fit-sync configuration. Reference: the README's "Configuration" section.
# Secrets never live here: `fit keys set SOURCE KEY`, or env FIT_<SOURCE>_<KEY>,
# or a systemd credential named <source>.<key>.

[store]
# SQLite file (created mode 0600). Default: $STATE_DIRECTORY/fit.sqlite3 under systemd,
# else ~/.local/share/fit/fit.sqlite3.
# path = "~/.local/share/fit/fit.sqlite3"

[sync]
# Clinic timezone: sessions are grouped by the local date. Default: the machine's, which
# cron may see otherwise than your shell. Set it before the first sync: a change applies only
# to records read after it.
# timezone = "Europe/Berlin"
# Records validated and written per transaction.
# record_batch_size = 2000
# Rows per push request (default: the adapter's own).
# push_batch_size = 500
# 2: where there are two CPUs, a large CSV file is read, and a big batch of clients scored,
# by two processes (same results); 1: one.
# processes = 2

[rules]
# Every number is a default from the literature (see the README); change it here.
# clinical_comparison = "below"   # or "at_or_below": is exactly the cutoff clinical?
# srs_cutoff = 36                  # overrides every SRS-family cutoff
# srs_drop = 1.0                   # SRS fall since the previous session that raises srs.drop
# ors_reliable_change = 5          # reliable change for the ORS family
# episode_gap_days = 90            # without an episode id, a gap this long starts a new episode
# disabled = ["srs.drop"]          # rule ids to switch off
# [rules.cutoffs]                  # per measure and age band
# "ORS.adult" = 25
# "ORS.adolescent" = 28
# "CORS.child" = 32

# One table per source. The name (here "clinic_csv") is used in commands and secret names.
[sources.clinic_csv]
adapter = "csv"
# namespace = "clinic"   # sources sharing client ids declare the same namespace
# client_id_case = "fold"  # g0001 = G0001; "keep" when codes differing in case are different
path = "/srv/fit/exports/"          # a FIT long CSV file, or a folder of them
scores_path = "/srv/fit/scores.csv" # written atomically on every sync that changes something
# delimiter = "auto"                # or "," or ";"
# scale = "points"                  # items on 0-10; "mm"/"percent" for 0-100; "range:1:10"

# Alerts by e-mail (README "Alerts by e-mail and webhook"). The password is a secret:
# `fit keys set notify_clinic_mail password`, or the systemd credential notify_clinic_mail.password.
# [notify.channels.clinic_mail]
# type = "email"
# host = "smtp.clinic.example"
# username = "fit-alerts@clinic.example"
# from = "FIT alerts <fit-alerts@clinic.example>"
# [notify.clinicians]
# T03 = "anna.berg@clinic.example"
# [notify.routes.clinicians]
# channel = "clinic_mail"
# to = "clinician"                  # each alert to its clinician's addresses
# when = "digest"                   # or "immediate" (after each sync)
# at = ["07:30"]                    # clinic time
# quiet_days = ["sat", "sun"]

# Caseload pages kept current after each sync (README "Caseload pages").
# [reports]
# caseload_dir = "/srv/fit/caseload"

# A Google Forms source (README "Google Forms adapter"; `fit google inspect SOURCE` proposes
# the question mapping). Its key: `fit keys set clinic_forms service_account --from-file key.json`
# [sources.clinic_forms]
# adapter = "google_forms"
# namespace = "clinic_csv"            # the same client ids as the CSV source above
# spreadsheet_id = "<the id in the sheet's URL>"
# [[sources.clinic_forms.forms]]
# form_id = "<the id in the form's URL>"
# client_id = "Client code"           # a questionId, or the exact question title
# administered_at = "createTime"      # default: the first submission (an edit keeps the date)
# [sources.clinic_forms.forms.measures.ORS]
# q1 = { id = "<questionId>", scale = "range:0:10" }
# q2 = { id = "<questionId>", scale = "range:0:10" }
# q3 = { id = "<questionId>", scale = "range:0:10" }
# q4 = { id = "<questionId>", scale = "range:0:10" }
"""
