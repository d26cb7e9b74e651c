"""Runtime pieces shared by every service (config, messaging, db, tracing…), once."""
