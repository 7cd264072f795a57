"""The sans-I/O MQTT protocol layer: packets, codec, validation, topics and the subscription trie.

Nothing in this package touches asyncio, sockets or clocks; it turns bytes into packets and
packets into bytes, and says precisely what is wrong with bad input.
"""
