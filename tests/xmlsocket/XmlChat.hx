// A Flash XMLSocket chat client, as Flash-era chat and game SWFs were: it connects
// flash.net.XMLSocket to a host and port, sends each line it is given as one XMLSocket
// message, and hands each message the server sends to the page.
//
// The page drives it through ExternalInterface:
//   xmlchatConnect(host, port)   connects (once)
//   xmlchatSend(text)            sends one message (false when not connected)
//   xmlchatClose()               closes the socket
// and hears from it through its global function xmlchatEvent(kind, data), with kind one of
// "ready" (the callbacks are in place), "connect", "data" (data: the message), "close",
// "ioError" and "securityError" (data: the error's text).
//
// Built by tests/xmlsocket/build (haxe, flash target) into tests/xmlsocket/out/xmlchat.swf.

import flash.events.DataEvent;
import flash.events.Event;
import flash.events.IOErrorEvent;
import flash.events.SecurityErrorEvent;
import flash.external.ExternalInterface;
import flash.net.XMLSocket;

class XmlChat {
	static var socket:XMLSocket;
	static var connected = false;

	static function main() {
		if (!ExternalInterface.available) {
			trace("XmlChat: no ExternalInterface, nothing to do");
			return;
		}
		ExternalInterface.addCallback("xmlchatConnect", connect);
		ExternalInterface.addCallback("xmlchatSend", send);
		ExternalInterface.addCallback("xmlchatClose", close);
		report("ready", "");
	}

	static function connect(host:String, port:Int):Bool {
		if (socket != null)
			return false;
		socket = new XMLSocket();
		socket.addEventListener(Event.CONNECT, function(_:Event) {
			connected = true;
			report("connect", "");
		});
		socket.addEventListener(DataEvent.DATA, function(e:DataEvent) report("data", e.data));
		socket.addEventListener(Event.CLOSE, function(_:Event) {
			connected = false;
			report("close", "");
		});
		socket.addEventListener(IOErrorEvent.IO_ERROR, function(e:IOErrorEvent) report("ioError", e.text));
		socket.addEventListener(SecurityErrorEvent.SECURITY_ERROR, function(e:SecurityErrorEvent) report("securityError", e.text));
		socket.connect(host, port);
		return true;
	}

	static function send(text:String):Bool {
		if (!connected)
			return false;
		socket.send(text);
		return true;
	}

	static function close():Void {
		if (socket != null && connected) {
			socket.close();
			connected = false;
		}
	}

	static function report(kind:String, data:String):Void {
		ExternalInterface.call("xmlchatEvent", kind, data);
	}
}
