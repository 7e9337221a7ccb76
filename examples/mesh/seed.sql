-- Tables of the example mesh's ports, with a few rows (created by the demo, not by govern:
-- data product teams own their tables; govern owns who may read them).
CREATE SCHEMA IF NOT EXISTS hcp_master;
CREATE TABLE IF NOT EXISTS hcp_master.hcp (hcp_id text PRIMARY KEY, full_name text, email text,
  country text, specialty text, updated_at timestamptz DEFAULT now());
INSERT INTO hcp_master.hcp VALUES ('H1', 'Dr. Anna Berg', 'anna.berg@clinic.example', 'DE',
  'cardiology', now()), ('H2', 'Dr. Luc Martin', 'luc.martin@hopital.example', 'FR', 'oncology', now())
  ON CONFLICT DO NOTHING;
CREATE SCHEMA IF NOT EXISTS campaign_performance;
CREATE TABLE IF NOT EXISTS campaign_performance.campaign_kpis (campaign_id text, week date,
  country text, channel text, reach integer);
INSERT INTO campaign_performance.campaign_kpis VALUES ('C1', current_date - 2, 'DE', 'email', 1200);
CREATE SCHEMA IF NOT EXISTS trial_results;
CREATE TABLE IF NOT EXISTS trial_results.outcomes (trial_id text, arm text, endpoint text,
  value numeric);
INSERT INTO trial_results.outcomes VALUES ('T-301', 'treatment', 'OS', 0.72);
CREATE SCHEMA IF NOT EXISTS web_engagement;
CREATE TABLE IF NOT EXISTS web_engagement.page_views (day date, page text, views integer);
INSERT INTO web_engagement.page_views VALUES (current_date - 1, '/home', 5321);
CREATE SCHEMA IF NOT EXISTS field_inquiries;
CREATE TABLE IF NOT EXISTS field_inquiries.inquiry (inquiry_id text, topic text, received_on date);
INSERT INTO field_inquiries.inquiry VALUES ('MI-1001', 'oncology / product X', current_date - 3);
