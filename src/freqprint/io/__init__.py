"""Files: model checkpoints with their typed recipe (:mod:`.checkpoint`, :mod:`.recipe`), lazy
tensor stores over safetensors / torch zips / shards, the small untrusted files a user names
(:mod:`.files`), and the on-disk cache of trained models (:mod:`.cache`).  Nothing here unpickles."""
