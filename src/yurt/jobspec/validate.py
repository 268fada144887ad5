def validate(job):
    return []
