"""Plans service: the joint plan (yhteinen suunnitelma) and its follow-up (seuranta)."""
