"""yurt.testing"""
