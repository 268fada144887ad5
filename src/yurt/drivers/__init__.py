"""yurt.drivers"""
