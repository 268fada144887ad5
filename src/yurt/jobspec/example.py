def example_job(short: bool = False) -> str:
    return ""
