-- A user's choice of the model that writes summaries for conversations on this provider.
ALTER TABLE provider_configs ADD COLUMN summary_model TEXT;
