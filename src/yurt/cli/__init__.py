"""yurt.cli"""
