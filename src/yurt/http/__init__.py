"""yurt.http"""
